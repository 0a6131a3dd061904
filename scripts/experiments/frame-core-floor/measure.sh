#!/usr/bin/env bash
# Builds the frame-core-floor experiment exactly as scripts/build-frame.sh builds the frame's WASM
# (pinned nightly, -Zbuild-std, immediate abort, wasm-bindgen, the frame's wasm-opt passes, the
# glue through terser), bundles the glue with edge.js (the JS edge) and prints each file's size raw
# and as Brotli quality 11, lgwin 22 (the vault's settings): the core, its glue alone, and the glue
# with the edge. Needs scripts/setup.sh to have run, and Python's `brotli`. dist.py then makes a
# `dist/` of it for the e2e bench.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
export PATH="$HOME/.cargo/bin:$root/.tools/node_modules/.bin:$PATH"
out="${TMPDIR:-/tmp}/frame-core-floor"
mkdir -p "$out"
cd "$here"
cp "$root/Cargo.lock" Cargo.lock
# The lock file is a copy for the offline build: never left in the tree, even when the build fails.
trap 'rm -f "$here/Cargo.lock"' EXIT
RUSTUP_TOOLCHAIN="$(cat "$root/.tools/frame-toolchain")" \
  CARGO_UNSTABLE_BUILD_STD="core,alloc" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" \
  CARGO_TARGET_DIR="$out/target" \
  cargo build --quiet --target wasm32-unknown-unknown --profile wasm-release --offline
wasm-bindgen --target web --out-dir "$out/bindgen" "$out/target/wasm32-unknown-unknown/wasm-release/frame_core_floor.wasm"
wasm-opt --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  --enable-reference-types --enable-multivalue --strip-producers --flatten --rereloop -Oz -Oz \
  "$out/bindgen/frame_core_floor_bg.wasm" -o "$out/core.wasm"
terser "$out/bindgen/frame_core_floor.js" --compress --mangle --module --output "$out/glue.js"
# The glue and the JS edge as one module, as a frame with a JS edge would serve them.
python3 "$here/bundle.py" "$out/bindgen/frame_core_floor.js" "$here/edge.js" "$out/bundle.src.js"
terser "$out/bundle.src.js" --compress --mangle --module --output "$out/bundle.js"
python3 - "$out/core.wasm" "$out/glue.js" "$out/bundle.js" <<'PY'
import brotli, sys
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    print(f"{path}: {len(data)} B raw, {len(brotli.compress(data, quality=11, lgwin=22))} B Brotli")
PY
