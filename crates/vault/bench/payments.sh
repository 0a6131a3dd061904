#!/usr/bin/env bash
# Benchmark of POST /v1/payments (sandbox processor in process, unique Idempotency-Key per
# request, one webhook endpoint on a local receiver) next to POST /v1/tokens on the same run,
# and the webhook delivery lag (commit → arrival) under that load.
#
# Usage: crates/vault/bench/payments.sh     (needs wrk, python3, jq; a release build)
# Env:   DURATION (default 20s), CONNECTIONS (64), DATABASE_URL=postgres://… (fresh database)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-64}"
ORIGIN="https://shop.example"
say() { printf '\n[bench] %s\n' "$*" >&2; }
(cd "$root" && cargo build --release -p vault)
bin="$root/target/release/vault"
work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
VAULT_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export VAULT_MASTER_KEY
[ -n "${DATABASE_URL:-}" ] && export VAULT_DATABASE_URL="$DATABASE_URL"
"$bin" init --data-dir "$work/data" --merchant bench --allowed-origin "$ORIGIN" >"$work/init.json"
PK="$(jq -r .publishable_key "$work/init.json")"
ADMIN="$(jq -r .admin_key "$work/init.json")"
CA="$(jq -r .tls.cert "$work/init.json")"
export PK ORIGIN
RUST_LOG=warn "$bin" serve --data-dir "$work/data" --listen 127.0.0.1:0 --frame-dir "$work/none" \
  --rate-limit-key 1e9 --rate-limit-key-burst 1e9 --rate-limit-ip 1e9 --rate-limit-ip-burst 1e9 \
  >"$work/stdout" 2>>"$work/vault.log" &
pid=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$work/stdout" && break; sleep 0.1; done
url="$(sed -n 's/^listening on //p' "$work/stdout")"
secs="${DURATION%s}"
python3 "$here/lag.py" "$url" "$CA" "$ADMIN" "$PK" "$ORIGIN" "$work/env" "$secs" >"$work/lag.txt" 2>&1 &
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
