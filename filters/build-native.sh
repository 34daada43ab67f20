#!/usr/bin/env bash
# Builds one filter crate as an Envoy dynamic module (a cdylib for the host) with the
# `filter-native` profile and copies it to OUT atomically (write, then rename).
#
#   filters/build-native.sh <crate> <out.so>
#
# MESHPLUG_BUILD_ID, if set, is compiled into the filter.
set -euo pipefail
crate="$1"
out="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
target_dir="$root/target/native"
cargo build --quiet --manifest-path "$root/Cargo.toml" -p "$crate" --lib \
  --profile filter-native --target-dir "$target_dir"
mkdir -p "$(dirname "$out")"
cp "$target_dir/filter-native/lib${crate//-/_}.so" "$out.tmp.$$"
mv -f "$out.tmp.$$" "$out"
