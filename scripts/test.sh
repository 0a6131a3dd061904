#!/usr/bin/env bash
# Runs every check and test of the project. Installs what it needs first (idempotently).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$root/.tools/node_modules/.bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "services: Postgres and Redis for the store and cluster tests (shared ones, or private instances)"
# shellcheck source=scripts/services.sh
source scripts/services.sh
ensure_postgres
ensure_redis
echo "VAULT_TEST_DATABASE_URL=$VAULT_TEST_DATABASE_URL VAULT_TEST_REDIS_URL=$VAULT_TEST_REDIS_URL"

step "format"
cargo fmt --all -- --check

step "clippy (native, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy (wasm32: the frame with its DOM tests, the card crate's library)"
# The card crate's dev-dependencies (proptest, criterion) do not build for wasm32, so its
# test targets are linted natively above; here only its library, as the frame links it.
cargo clippy -p frame --target wasm32-unknown-unknown --all-targets --locked -- -D warnings
cargo clippy -p card --target wasm32-unknown-unknown --lib --locked -- -D warnings
# The frame as Trunk builds it: no_std, no default features (crates/frame/Cargo.toml).
cargo clippy -p frame --target wasm32-unknown-unknown --lib --no-default-features --features no-std --locked -- -D warnings

step "type-check web/loader.d.ts and every documented loader example (tsc)"
bash scripts/check-examples.sh

step "npm package web/package: build dist/, then node --test (SSR, one load, SRI, types vs the Rust protocol, React)"
# protocol.json, which the type check compares web/loader.d.ts with, is kept current by the
# frame crate's test protocol_json (cargo test below); the browser scenario is e2e's `package`.
(cd web/package && node scripts/build.mjs && node --test test/)

step "build the frame (scripts/build-frame.sh: trunk, release, offline, the pinned nightly) into dist/"
bash scripts/build-frame.sh

step "build the binaries the browser tests start"
cargo build -p vault -p demo-merchant --locked

step "unit, property, integration, doc and headless-browser end-to-end tests"
cargo test --workspace --locked

step "the vault's HTTP integration suite again, on Postgres (file-level SQLite checks excluded)"
VAULT_TEST_ENGINE=postgres cargo test -p vault --test api --locked -- \
  tokens:: admin:: security:: findings:: frame:: tls:: lifecycle:: payments:: webhooks:: devspace:: fonts:: --skip findings::finding_08

step "frame DOM tests in headless Chromium (wasm-bindgen-test)"
CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p frame --target wasm32-unknown-unknown --test dom --locked

step "benchmarks compile and run once (figures: see BENCHMARKS.md)"
cargo bench -p card --locked -- --test

step "reliability: dependency audit (cargo deny: advisories offline, bans, licenses, sources)"
scripts/reliability/deny.sh

step "reliability: fuzz crate: format, clippy, properties over seeds and regression inputs (no libFuzzer)"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --manifest-path fuzz/Cargo.toml --no-default-features --all-targets --locked -- -D warnings
cargo test --manifest-path fuzz/Cargo.toml --no-default-features --locked

step "reliability: fuzz smoke run, every target (libFuzzer, --sanitizer none)"
scripts/reliability/fuzz.sh smoke "${FUZZ_SMOKE_SECS:-3}"

step "reliability: API schema testing (schemathesis, bounded: 30 examples per operation, <= 100 s)"
scripts/reliability/schemathesis.sh smoke

step "reliability: fault scenarios, short ones (SQLite disk full on a tmpfs, slowloris; the rest: RELIABILITY.md)"
scripts/reliability/faults.sh smoke

step "reliability: TLS probes against a running vault"
scripts/reliability/tls-probe.sh

step "reliability: leak scan of runtime outputs for test card numbers (last)"
scripts/reliability/leak-scan.sh

echo
echo "all checks passed"
