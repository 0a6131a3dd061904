#!/usr/bin/env bash
# Benchmark of POST /v1/tokens over TLS keep-alive with the durable SQLite store, next to the
# ceiling of the same server (GET /healthz, no storage), then a kill -9 crash check.
#
# Usage: crates/vault/bench/run.sh            (from anywhere; needs wrk, python3, jq)
# Env:   DURATION (default 20s), CONNECTIONS (64), THREADS (1), WARMUP (3s)
#        DATABASE_URL=postgres://…/db   run on Postgres instead of SQLite (a fresh, empty
#                                       database: the script initialises it)
#        INSTANCES=2                    with DATABASE_URL: that many vault processes, each
#                                       loaded by its own wrk with CONNECTIONS/INSTANCES
#                                       connections; rates are summed, p99 is the worst
#        POOL_SIZE=16                   with DATABASE_URL: each process's --database-pool-size
#        VAULT_BIN=path                 a vault binary built before (no build step)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-3s}"
ORIGIN="https://shop.example"

say() { printf '\n[bench] %s\n' "$*" >&2; }
command -v wrk >/dev/null || { say "installing wrk"; apt-get install -y wrk >/dev/null; }

if [ -n "${VAULT_BIN:-}" ]; then
  bin="$VAULT_BIN"
else
  say "building release"
  (cd "$root" && cargo build --release -p vault)
  bin="$root/target/release/vault"
fi

work="$(mktemp -d)"
data="$work/data"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

VAULT_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export VAULT_MASTER_KEY
INSTANCES="${INSTANCES:-1}"
if [ -n "${DATABASE_URL:-}" ]; then
  export VAULT_DATABASE_URL="$DATABASE_URL"
  export VAULT_DATABASE_POOL_SIZE="${POOL_SIZE:-16}"
elif [ "$INSTANCES" != 1 ]; then
  say "INSTANCES > 1 needs DATABASE_URL"; exit 1
fi
"$bin" init --data-dir "$data" --merchant bench --allowed-origin "$ORIGIN" >"$work/init.json"
PK="$(jq -r .publishable_key "$work/init.json")"
SK="$(jq -r .secret_key "$work/init.json")"
CA="$(jq -r .tls.cert "$work/init.json")"
export PK ORIGIN

start_vault() {
  : >"$work/stdout"
  RUST_LOG="${RUST_LOG:-info}" "$bin" serve --data-dir "$data" --listen "127.0.0.1:${PORT:-0}" \
    --frame-dir "$work/none" --rate-limit-key 1e9 --rate-limit-key-burst 1e9 \
    --rate-limit-ip 1e9 --rate-limit-ip-burst 1e9 >"$work/stdout" 2>>"$work/vault.log" &
  pid=$!
  for _ in $(seq 1 100); do
    if grep -q '^listening on ' "$work/stdout"; then break; fi
    sleep 0.1
  done
  url="$(sed -n 's/^listening on //p' "$work/stdout")"
  PORT="${url##*:}"
  [ -n "$url" ] || { say "vault did not start"; cat "$work/vault.log" >&2; exit 1; }
}

if [ "$INSTANCES" != 1 ]; then
  # N processes, N wrk clients; print the summed rate and the worst p99 of each phase.
  urls=(); pids=()
  for i in $(seq 1 "$INSTANCES"); do
    pid=""; PORT=0; start_vault; urls+=("$url"); pids+=("$pid")
  done
  pid=""
  cleanup() { kill "${pids[@]}" 2>/dev/null; rm -rf "$work"; }
  per=$((CONNECTIONS / INSTANCES))
  phase() { # name, path, extra env
    local name="$1" path="$2"; shift 2
    local script=(-s "$here/tokens.lua")
    [ "$path" = /healthz ] && script=()
    local wrks=()
    for i in "${!urls[@]}"; do
      env "$@" TAG="w$i" wrk -t1 -c"$per" -d"$DURATION" --latency "${script[@]}" "${urls[$i]}$path" >"$work/$name-$i.txt" &
      wrks+=("$!")
    done
    wait "${wrks[@]}"
    python3 - "$work" "$name" "$INSTANCES" <<'PY'
import re, sys
work, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rate, p99 = 0.0, 0.0
for i in range(n):
    t = open(f"{work}/{name}-{i}.txt").read()
    rate += float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
    v = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    p99 = max(p99, v)
    err = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    if err: print(f"  instance {i}: {err.group(1)} non-2xx answers")
print(f"{name}: {rate:.0f} req/s summed over {n} instances, worst p99 {p99:.2f} ms")
PY
  }
  say "warm-up"; phase warmup /v1/tokens >/dev/null
  say "ceiling: GET /healthz on every instance"; phase ceiling /healthz
  say "POST /v1/tokens on every instance"; phase tokens /v1/tokens
  say "POST /v1/tokens with a unique Idempotency-Key per request"; phase idem /v1/tokens IDEMPOTENCY=1
  exit 0
fi

start_vault
say "vault at $url (pid $pid); logs: info level, JSON, to a file"

say "warm-up"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$here/tokens.lua" "$url/v1/tokens" >/dev/null

say "ceiling: GET /healthz (TLS, keep-alive, no storage)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url/healthz" | tee "$work/ceiling.txt"

say "POST /v1/tokens (validation, HMAC fingerprint, AES-256-GCM, durable group commit, audit row)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/tokens.lua" "$url/v1/tokens" | tee "$work/tokens.txt"

say "POST /v1/tokens with a unique Idempotency-Key per request"
IDEMPOTENCY=1 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/tokens.lua" "$url/v1/tokens" | tee "$work/idem.txt"

say "crash check: kill -9 during load, restart, every 201-answered token must read back"
ids="$work/ids.txt"
: >"$ids"
RECORD="$ids" wrk -t"$THREADS" -c"$CONNECTIONS" -d10s -s "$here/tokens.lua" "$url/v1/tokens" >"$work/crash-wrk.txt" 2>&1 &
wrk_pid=$!
sleep 5
kill -9 "$pid"
say "killed vault (pid $pid) with $(wc -l <"$ids") tokens answered 201 so far"
wait "$wrk_pid" || true
pid=""
start_vault
say "restarted vault at $url"
python3 "$here/readback.py" "$url" "$CA" "$SK" "$ids"
say "done"
