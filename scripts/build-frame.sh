#!/usr/bin/env bash
# Builds the card frame (crates/frame, static/frame) into dist/ with Trunk: the one way the
# demo, the tests and CI build it. Extra arguments go to `trunk build`.
#
# The WASM is compiled by the nightly that scripts/setup.sh pins (its name in
# .tools/frame-toolchain), with core and alloc built from source alongside the frame
# (`-Zbuild-std`, so LTO reaches them) and `panic = immediate-abort` (a panic traps without
# formatting a message: no panic locations, no `core::fmt`). About 1.4 KB less
# Brotli on every cold mount than the stable build (BENCHMARKS.md). Behaviour is the same: the
# frame's own `no_std` build already trapped on panic, it only could not drop the machinery.
# Everything else in the workspace, the frame's DOM tests and clippy included, uses stable.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$root/.tools/node_modules/.bin:$PATH"

toolchain="$(cat .tools/frame-toolchain 2>/dev/null || true)"
if [ -z "$toolchain" ]; then
  echo "build-frame: no frame toolchain recorded; run scripts/setup.sh first" >&2
  exit 1
fi

RUSTUP_TOOLCHAIN="$toolchain" \
  CARGO_UNSTABLE_BUILD_STD="core,alloc" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" \
  trunk build --release --offline "$@"
