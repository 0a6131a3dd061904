#!/usr/bin/env bash
# Benchmark of POST /v1/payments (sandbox processor in process, unique Idempotency-Key per
# request, one webhook endpoint on a local receiver) next to POST /v1/tokens on the same run,
# and the webhook delivery lag (commit → arrival at a local https receiver) under that load.
#
# Usage: crates/vault/bench/payments.sh     (needs wrk, python3, jq; a release build)
# Env:   DURATION (default 20s), CONNECTIONS (64), DATABASE_URL=postgres://… (fresh database),
#        POOL_SIZE (64: the vault's --database-pool-size), VAULT_BIN (a release vault built
#        before, and its target/release/examples/webhook_sink: no build step),
#        RECEIVER=http (a plain-http receiver, to compare with builds older than
#        --webhook-test-ca; the default and the figures in BENCHMARKS.md are https)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-64}"
ORIGIN="https://shop.example"
say() { printf '\n[bench] %s\n' "$*" >&2; }
if [ -z "${VAULT_BIN:-}" ]; then
  (cd "$root" && cargo build --release -p vault --bin vault --example webhook_sink)
fi
bin="${VAULT_BIN:-$root/target/release/vault}"
work="$(mktemp -d)"
pid=""
sink_pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
VAULT_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export VAULT_MASTER_KEY
[ -n "${DATABASE_URL:-}" ] && export VAULT_DATABASE_URL="$DATABASE_URL"
# More connections share each WAL flush (see BENCHMARKS.md); SQLite ignores it.
export VAULT_DATABASE_POOL_SIZE="${POOL_SIZE:-64}"
"$bin" init --data-dir "$work/data" --merchant bench --allowed-origin "$ORIGIN" >"$work/init.json"
PK="$(jq -r .publishable_key "$work/init.json")"
ADMIN="$(jq -r .admin_key "$work/init.json")"
CA="$(jq -r .tls.cert "$work/init.json")"
export PK ORIGIN
# The webhook receiver (Rust, keep-alive, https with its own certificate, which the vault
# trusts for test-mode deliveries through --webhook-test-ca): the load's deliveries must not
# queue behind it.
trust=()
if [ "${RECEIVER:-https}" = http ]; then
  "$root/target/release/examples/webhook_sink" "$work/arrivals.txt" >"$work/sink.out" 2>&1 &
else
  "$root/target/release/examples/webhook_sink" "$work/arrivals.txt" "$work/sink" >"$work/sink.out" 2>&1 &
  trust=(--webhook-test-ca "$work/sink/tls/cert.pem")
fi
sink_pid=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$work/sink.out" && break; sleep 0.1; done
sink_url="$(sed -n 's/^listening on //p' "$work/sink.out")/hook"
say "webhook receiver: $sink_url"
RUST_LOG=warn "$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 --frame-dir "$work/none" \
  --rate-limit-key 1e9 --rate-limit-key-burst 1e9 --rate-limit-ip 1e9 --rate-limit-ip-burst 1e9 \
  "${trust[@]}" >"$work/stdout" 2>>"$work/vault.log" &
pid=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$work/stdout" && break; sleep 0.1; done
url="$(sed -n 's/^listening on //p' "$work/stdout")"
secs="${DURATION%s}"
python3 "$here/lag.py" "$url" "$CA" "$ADMIN" "$PK" "$ORIGIN" "$work/env" "$secs" "$sink_url" "$work/arrivals.txt" >"$work/lag.txt" 2>&1 &
lag_pid=$!
for _ in $(seq 1 100); do [ -s "$work/env" ] && break; sleep 0.1; done
set -a; . "$work/env"; set +a
say "warm-up"
wrk -t1 -c"$CONNECTIONS" -d3s -s "$here/payments.lua" "$url/v1/payments" >/dev/null
say "POST /v1/tokens"
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/tokens.lua" "$url/v1/tokens" | tee "$work/tokens.txt"
say "POST /v1/payments (Idempotency-Key, sandbox processor) with delivery lag measured"
touch "$work/LAG_GO"
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/payments.lua" "$url/v1/payments" | tee "$work/payments.txt"
wait "$lag_pid" || say "lag probe failed"; cat "$work/lag.txt"
kill -TERM "$sink_pid" 2>/dev/null; wait "$sink_pid" 2>/dev/null || true; sink_pid=""
say "webhook deliveries the sink received in all (warm-up and run): $(sed -n 's/^deliveries //p' "$work/sink.out")"
