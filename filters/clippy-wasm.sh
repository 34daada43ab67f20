#!/usr/bin/env bash
# clippy -D warnings on the wasm32 target for the SDK's proxy-wasm backend and the filters, with
# the same toolchain choice as build-wasm.sh: a rustup toolchain with wasm32-unknown-unknown,
# or Debian's rustc-web + rust-web-src + rust-web-clippy (std rebuilt with -Zbuild-std).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target=wasm32-unknown-unknown
crates=(-p meshplug-sdk -p authz -p ratelimit -p header-rewrite -p bench-authz-raw -p bench-hostcalls -p bench-noop
        -p callout-auth -p body-redaction -p hello-headers -p config-header -p metadata-reader -p stream-facts)

if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  cargo clippy --quiet --manifest-path "$root/Cargo.toml" "${crates[@]}" --target "$target" \
    --target-dir "$root/target/wasm-clippy" -- -D warnings
elif [ -x /usr/bin/cargo-clippy ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
  PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 \
    /usr/bin/cargo clippy --quiet --manifest-path "$root/Cargo.toml" "${crates[@]}" \
    --target "$target" -Zbuild-std=std,panic_abort --target-dir "$root/target/wasm-clippy" \
    -- -D warnings
else
  echo "clippy-wasm: no wasm clippy: need a rustup '$target' target, or Debian's" \
       "rustc-web, rust-web-src and rust-web-clippy (run 'make setup')" >&2
  exit 1
fi
