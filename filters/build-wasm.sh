#!/usr/bin/env bash
# Builds one filter crate for wasm32-unknown-unknown with the `filter` profile and copies the
# module to OUT atomically (write, then rename).
#
#   filters/build-wasm.sh <crate> <out.wasm>
#
# Toolchain, first that works: a rustup toolchain with the wasm32-unknown-unknown target, or
# Debian's rustc-web + rust-web-src + lld (std rebuilt with -Zbuild-std, linked by wasm-ld).
# MESHPLUG_BUILD_ID, if set, is compiled into the filter.
set -euo pipefail
crate="$1"
out="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
target=wasm32-unknown-unknown
artifact_name="${crate//-/_}.wasm"

if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$target"; then
  target_dir="$root/target/wasm-rustup"
  cargo build --quiet --manifest-path "$root/Cargo.toml" -p "$crate" \
    --target "$target" --profile filter --target-dir "$target_dir"
elif [ -x /usr/bin/cargo ] && [ -x /usr/bin/wasm-ld ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
  target_dir="$root/target/wasm-debian"
  PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/bin/wasm-ld \
    /usr/bin/cargo build --quiet --manifest-path "$root/Cargo.toml" -p "$crate" \
    --target "$target" --profile filter -Zbuild-std=std,panic_abort --target-dir "$target_dir"
else
  echo "build-wasm: no wasm toolchain: need a rustup '$target' target, or Debian's" \
       "rustc-web, rust-web-src and lld (run 'make setup')" >&2
  exit 1
fi

mkdir -p "$(dirname "$out")"
cp "$target_dir/$target/filter/$artifact_name" "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
