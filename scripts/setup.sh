#!/usr/bin/env bash
# Installs everything the demo and the tests need, skipping what is already present.
# Safe to run any number of times. Versions are pinned here and nowhere else.
set -euo pipefail

WASM_BINDGEN_VERSION="0.2.130" # must equal the `wasm-bindgen = "=..."` pin in Cargo.toml
TRUNK_VERSION="0.21.14"        # trunk 0.22 needs a newer rustc than this machine has
# The frame's WASM is built with a pinned nightly (scripts/build-frame.sh): core and alloc compiled
# from source with the frame (`-Zbuild-std`), and `panic = immediate-abort`, which leaves out
# the panic machinery (messages, locations, `core::fmt`): about 1.4 KB less Brotli on every cold
# mount (BENCHMARKS.md). This machine kind ships a `nightly` that is this one; elsewhere the dated
# toolchain is installed. Everything else builds with the stable toolchain.
FRAME_NIGHTLY_RUSTC="rustc 1.97.0-nightly (e50aa6fba 2026-05-19)"
FRAME_NIGHTLY_DATE="2026-05-20" # the channel date of that rustc
BINARYEN_VERSION="132"         # Debian's binaryen 108 corrupts current rustc output
TYPESCRIPT_VERSION="5.9.3"     # type-checks web/loader.d.ts and the documented examples
TERSER_VERSION="5.51.4"        # minifies the frame's wasm-bindgen glue (scripts/shrink-glue.py, a Trunk hook)
AXE_CORE_VERSION="4.10.3"      # accessibility check of Dev Space pages in the browser tests (MPL-2.0, test only)
# React for the npm package's tests (web/package: server rendering in node, and the UMD
# development builds its browser test serves); MIT, test only. 18.3 is the last React with UMD
# builds, which a page without a bundler can load. Its dependencies, pinned too:
REACT_PACKAGES="react@18.3.1 react-dom@18.3.1 scheduler@0.23.2 loose-envify@1.4.0 js-tokens@4.0.0"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"
export PATH="$HOME/.cargo/bin:$tools/node_modules/.bin:$PATH"

say() { printf '[setup] %s\n' "$*" >&2; }
need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Rust target for the frame.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The frame's nightly (see FRAME_NIGHTLY_RUSTC) with rust-src for `-Zbuild-std`; its name is kept
# in .tools/frame-toolchain for scripts/build-frame.sh.
# (Installed toolchains are listed before any `rustup run`, which could otherwise download one.)
host="$(rustc -vV | sed -n 's/^host: //p')"
installed() { rustup toolchain list | grep -q "^$1-$host\b"; }
frame_toolchain="nightly-$FRAME_NIGHTLY_DATE"
if installed nightly && [ "$(rustup run nightly rustc -V)" = "$FRAME_NIGHTLY_RUSTC" ]; then
  frame_toolchain=nightly
elif ! installed "$frame_toolchain"; then
  say "installing rust $frame_toolchain for the frame's WASM (minimal profile, rust-src)"
  rustup toolchain install "$frame_toolchain" --profile minimal --component rust-src
fi
if [ "$(rustup run "$frame_toolchain" rustc -V)" != "$FRAME_NIGHTLY_RUSTC" ]; then
  say "error: $frame_toolchain is not $FRAME_NIGHTLY_RUSTC"
  exit 1
fi
library="$(rustup run "$frame_toolchain" rustc --print sysroot)/lib/rustlib/src/rust/library"
if [ ! -f "$library/Cargo.lock" ]; then
  say "adding rust-src to $frame_toolchain (core and alloc are built from source for the frame)"
  rustup component add rust-src --toolchain "$frame_toolchain"
fi
# build-std compiles the standard library's own dependencies (compiler_builtins, ...): fetched
# here, so that the offline frame build finds them.
rustup run "$frame_toolchain" cargo fetch --quiet --manifest-path "$library/Cargo.toml"
echo "$frame_toolchain" >"$tools/frame-toolchain"

# wasm-bindgen-cli at exactly the crate's version (no --locked: its lockfile pins a crate
# the registry here lacks).
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# Trunk builds the frame.
if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION\$"; then
  say "installing trunk $TRUNK_VERSION (about 7 minutes)"
  cargo install trunk --version "$TRUNK_VERSION" --locked --force
fi

# wasm-opt from npm's binaryen, kept inside the project.
if ! "$tools/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "version $BINARYEN_VERSION"; then
  if ! command -v npm >/dev/null; then
    say "installing nodejs and npm"
    need_root apt-get update -qq
    need_root apt-get install -y -qq nodejs npm
  fi
  say "installing binaryen@$BINARYEN_VERSION from npm"
  (cd "$tools" && [ -f package.json ] || echo '{"private":true}' >"$tools/package.json")
  npm install --prefix "$tools" --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
fi

# TypeScript (tsc) from npm, kept inside the project, for scripts/check-examples.sh.
if ! "$tools/node_modules/.bin/tsc" --version 2>/dev/null | grep -qx "Version $TYPESCRIPT_VERSION"; then
  say "installing typescript@$TYPESCRIPT_VERSION from npm"
  [ -f "$tools/package.json" ] || echo '{"private":true}' >"$tools/package.json"
  npm install --prefix "$tools" --no-audit --no-fund --silent "typescript@$TYPESCRIPT_VERSION"
fi

# terser from npm, kept inside the project: Trunk's post-build hook minifies the frame's glue
# with it (the build fails without it).
if ! "$tools/node_modules/.bin/terser" --version 2>/dev/null | grep -qx "terser $TERSER_VERSION"; then
  say "installing terser@$TERSER_VERSION from npm"
  [ -f "$tools/package.json" ] || echo '{"private":true}' >"$tools/package.json"
  npm install --prefix "$tools" --no-audit --no-fund --silent "terser@$TERSER_VERSION"
fi

# axe-core from npm, kept inside the project: the Dev Space browser test injects it into each
# page (never fetched by the browser from anywhere).
if ! grep -qs "\"version\": \"$AXE_CORE_VERSION\"" "$tools/node_modules/axe-core/package.json"; then
  say "installing axe-core@$AXE_CORE_VERSION from npm"
  [ -f "$tools/package.json" ] || echo '{"private":true}' >"$tools/package.json"
  npm install --prefix "$tools" --no-audit --no-fund --silent "axe-core@$AXE_CORE_VERSION"
fi

# React and react-dom (with their pinned dependencies) from npm, kept inside the project.
for spec in $REACT_PACKAGES; do
  if ! grep -qs "\"version\": \"${spec##*@}\"" "$tools/node_modules/${spec%@*}/package.json"; then
    say "installing $REACT_PACKAGES from npm"
    [ -f "$tools/package.json" ] || echo '{"private":true}' >"$tools/package.json"
    # shellcheck disable=SC2086 # one word per package
    npm install --prefix "$tools" --no-audit --no-fund --silent $REACT_PACKAGES
    break
  fi
done

# Debian's Chromium and its driver for the browser tests (never a test tool's own download).
if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
  say "installing chromium and chromium-driver from Debian"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core
fi

say "toolchain ready"

# --- Reliability suite (RELIABILITY.md, scripts/reliability/) ---
CARGO_DENY_VERSION="0.20.2" # needs rustc >= 1.88
CARGO_FUZZ_VERSION="0.13.2"

# cargo-deny: dependency audit against the offline RustSec snapshot (about 4-9 minutes).
if ! cargo deny --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION\$"; then
  say "installing cargo-deny $CARGO_DENY_VERSION (about 4-9 minutes)"
  cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked --force
fi

# cargo-fuzz: libFuzzer targets in fuzz/, run on stable with --sanitizer none (about 1-2 minutes).
if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION (about 1-2 minutes)"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --force
fi

# openssl (s_client, TLS probes) and curl; Debian's, usually present already. wrk and jq: the
# vault's load benchmarks (crates/vault/bench/*.sh, BENCHMARKS.md), not the test command.
if ! { command -v openssl >/dev/null && command -v curl >/dev/null && command -v wrk >/dev/null \
  && command -v jq >/dev/null; }; then
  say "installing openssl, curl, wrk and jq from Debian"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl curl wrk jq
fi

# npm packages (binaryen, typescript, terser, axe-core, react and their dependencies): every tarball installed
# above must be the one reviewed and pinned in scripts/reliability/npm/package-lock.json (same
# version and sha512 integrity; none has install scripts, and a package's dependencies must be
# pinned there too, see RELIABILITY.md). Offline: compares npm's own
# record of what it installed. No `npm audit`: the registry here has no advisory endpoint.
if ! python3 - "$root/scripts/reliability/npm/package-lock.json" "$tools/node_modules/.package-lock.json" <<'PY'
import json, sys
pinned = json.load(open(sys.argv[1]))["packages"]
try:
    installed = json.load(open(sys.argv[2]))["packages"]
except (OSError, ValueError):
    installed = {}
bad = 0
for name, pin in pinned.items():
    if not name:
        continue
    got = installed.get(name, {})
    if (got.get("version"), got.get("integrity")) != (pin["version"], pin["integrity"]):
        print(f"[setup] {name} in .tools is not the pinned tarball: installed {got.get('version')} "
              f"{got.get('integrity')}, pinned {pin['version']} {pin['integrity']}", file=sys.stderr)
        bad += 1
    unpinned = [d for d in got.get("dependencies", {}) if f"node_modules/{d}" not in pinned]
    if got.get("hasInstallScript") or unpinned:
        print(f"[setup] {name} now has install scripts or unpinned dependencies {unpinned}: review it again",
              file=sys.stderr)
        bad += 1
for name in installed:
    if name and name not in pinned:
        print(f"[setup] {name} is installed in .tools but not pinned: review it and pin it", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
PY
then
  exit 1
fi

# schemathesis (PyPI, pinned in scripts/reliability/schemathesis/requirements.txt) in
# .tools/venv, for scripts/reliability/schemathesis.sh (about 1 minute once; a few ms after).
bash "$root/scripts/reliability/venv.sh"

say "reliability tools ready"
