#!/usr/bin/env bash
# Fault scenarios against a real vault binary. Each sets itself up (temporary directories,
# private Postgres/Redis instances from scripts/services.sh, never the machine's shared ones on
# 127.0.0.1:5432/6379) and tears everything down on exit. Traffic goes to loopback only.
#
#   scripts/reliability/faults.sh postgres    # Postgres paused (SIGSTOP) then restarted under
#                                              # tokenize load: 503 + Retry-After while down, back
#                                              # by itself, no acknowledged token lost
#   scripts/reliability/faults.sh redis       # Redis (shared rate limits) stopped under load:
#                                              # the vault keeps answering 201
#   scripts/reliability/faults.sh disk-full   # the SQLite data directory on a small tmpfs that
#                                              # fills up: 503 + Retry-After, integrity_check ok,
#                                              # 201 again once space is freed, nothing lost
#   scripts/reliability/faults.sh slowloris   # hundreds of connections dribbling headers while a
#                                              # normal client keeps its latency; beyond the
#                                              # per-client connection cap connections are shed
#   scripts/reliability/faults.sh smoke       # disk-full and slowloris (the step of scripts/test.sh, about 1 minute)
#   scripts/reliability/faults.sh all
# Env: VAULT_BIN (default target/debug/vault), LOAD_THREADS (4).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/scripts/reliability"
export PATH="$HOME/.cargo/bin:$PATH"
vault="${VAULT_BIN:-$root/target/debug/vault}"
[ -x "$vault" ] || (cd "$root" && cargo build -p vault --locked --quiet)
load() { python3 "$here/tokenize_load.py" "$@"; }
# shellcheck source=scripts/reliability/lib.sh
source "$here/lib.sh"
threads="${LOAD_THREADS:-4}"
results="$root/target/reliability/faults"
mkdir -p "$results"

tmp=""
vault_pid=""
mounted=""
cleanup_scenario() {
  if [ -n "$vault_pid" ]; then kill "$vault_pid" 2>/dev/null || true; wait "$vault_pid" 2>/dev/null || true; vault_pid=""; fi
  # The vault's warnings and errors stay for the record (no card data: the leak scan covers logs).
  if [ -n "$tmp" ] && [ -f "$tmp/serve.log" ]; then grep -v '"level":"INFO"' "$tmp/serve.log" >"$results/$scenario.serve.log" || true; fi
  if [ -n "$mounted" ]; then umount "$mounted" 2>/dev/null || umount -l "$mounted" 2>/dev/null || true; mounted=""; fi
  if [ -n "$tmp" ]; then rm -rf "$tmp"; tmp=""; fi
}
on_exit() {
  cleanup_scenario
  if declare -f stop_private_postgres >/dev/null; then
    # A paused Postgres cannot stop: let it go on first.
    if [ -n "${PRIVATE_PG_DIR:-}" ] && [ -f "$PRIVATE_PG_DIR/data/postmaster.pid" ]; then
      pg_group CONT 2>/dev/null || true
    fi
    stop_private_postgres
    stop_private_redis
  fi
}
trap on_exit EXIT

fail() { echo "faults: FAILED: $*" >&2; exit 1; }
mark() { printf '%s %s\n' "$(date +%s.%N)" "$1" >>"$tmp/phases.txt"; echo "faults:   $(date +%T) phase: $1"; }

# start_vault DATA_DIR [serve args...]: init (unless initialised) and serve; sets base, pk, sk, cert.
start_vault() {
  local data="$1"
  shift
  if [ ! -f "$tmp/init.json" ]; then
    "$vault" init --data-dir "$data" --merchant "Faults" "${init_args[@]}" >"$tmp/init.json" 2>"$tmp/init.log" ||
      { cat "$tmp/init.log" >&2; fail "vault init"; }
  fi
  mkdir -p "$tmp/frame"
  # Rate limits far above the load: the limiter is not what these scenarios are about.
  vault_serve "$vault" "$tmp/serve" --data-dir "$data" --frame-dir "$tmp/frame" \
    --rate-limit-key 100000 --rate-limit-key-burst 100000 --rate-limit-ip 100000 --rate-limit-ip-burst 100000 \
    "$@" || fail "the vault did not start"
  read -r pk sk cert < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["publishable_key"], d["secret_key"], d["tls"]["cert"])' "$tmp/init.json")
}

new_tmp() { scenario="$1"; tmp="$(mktemp -d "${TMPDIR:-/tmp}/faults-$1.XXXXXX")"; : >"$tmp/phases.txt"; init_args=(); }

# Sends signal $1 to every process of the private Postgres (postmaster and its backends).
pg_group() {
  local pm
  pm="$(head -1 "$PRIVATE_PG_DIR/data/postmaster.pid")"
  kill -"$1" "$pm" $(pgrep -P "$pm") 2>/dev/null
}

check_summary() { # summary.json python-expression-over-s message
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
s = json.loads([line for line in open(sys.argv[1]) if line.startswith("{")][-1])
ok = eval(sys.argv[2], {"s": s})
print(("faults:   ok   " if ok else "faults:   FAIL ") + sys.argv[3])
sys.exit(0 if ok else 1)
PY
}

# The answers of every phase are 201 or 503 (no 500, no connection error), every 503 with Retry-After.
only_201_and_503() {
  check_summary "$1" 'all(set(p["answers"]) <= {"201","503"} for p in s.values())' "no status other than 201 and 503 (no 500), no connection error" &&
    check_summary "$1" 'all(p["503_with_retry_after"] == p["answers"].get("503",0) for p in s.values())' "every 503 carries Retry-After"
}

scenario_postgres() {
  echo "==> faults: Postgres paused (SIGSTOP) and restarted (pg_ctl restart) under tokenize load"
  new_tmp postgres
  export VAULT_PRIVATE_POSTGRES=1 VAULT_PRIVATE_REDIS=1
  unset VAULT_TEST_DATABASE_URL VAULT_TEST_REDIS_URL
  # shellcheck source=scripts/services.sh
  source "$root/scripts/services.sh"
  ensure_postgres
  trap on_exit EXIT # services.sh set its own
  local url="$VAULT_TEST_DATABASE_URL" pg_ctl
  pg_ctl=("${PRIVATE_PG[@]}")
  unset 'pg_ctl[${#pg_ctl[@]}-1]' # drop "stop"
  init_args=(--database-url "$url")
  start_vault "$tmp/data" --database-url "$url"
  load run "$base" "$pk" "$cert" "$tmp/load.jsonl" --threads "$threads" --seconds 34 &
  local load_pid=$!
  mark "before"; sleep 5
  mark "paused"; pg_group STOP; sleep 8
  mark "resumed"; pg_group CONT; sleep 8
  mark "restarting"; "${pg_ctl[@]}" -w restart >>"$tmp/pg-restart.log" 2>&1 || { cat "$tmp/pg-restart.log" >&2; fail "pg_ctl restart"; }
  mark "restarted"
  wait "$load_pid"
  mark "end"
  load report "$tmp/load.jsonl" "$tmp/phases.txt" | tee "$results/postgres.txt"
  local s="$results/postgres.txt" bad=0
  check_summary "$s" 's["before"]["answers"].get("201",0) > 0 and set(s["before"]["answers"]) == {"201"}' "before the fault: only 201" || bad=1
  check_summary "$s" 's["paused"]["answers"].get("503",0) > 0' "while paused: 503 answers (the vault does not hang)" || bad=1
  only_201_and_503 "$s" || bad=1
  check_summary "$s" 's["resumed"]["first_201_after_start_s"] is not None and s["resumed"]["first_201_after_start_s"] < 6' "after SIGCONT: 201 again within 6 s, by itself" || bad=1
  check_summary "$s" 's["restarted"]["first_201_after_start_s"] is not None and s["restarted"]["first_201_after_start_s"] < 6' "after pg_ctl restart: 201 again within 6 s, by itself" || bad=1
  load verify "$base" "$sk" "$cert" "$tmp/load.jsonl" | tee -a "$results/postgres.txt" || bad=1
  [ "$bad" = 0 ] || { grep -v '"level":"INFO"' "$tmp/serve.log" | tail -20 >&2; fail "postgres scenario"; }
  cleanup_scenario
}

scenario_redis() {
  echo "==> faults: Redis (shared rate limits) stopped under tokenize load"
  new_tmp redis
  export VAULT_PRIVATE_REDIS=1
  unset VAULT_TEST_REDIS_URL
  # shellcheck source=scripts/services.sh
  source "$root/scripts/services.sh"
  ensure_redis
  trap on_exit EXIT
  start_vault "$tmp/data" --redis-url "$VAULT_TEST_REDIS_URL"
  load run "$base" "$pk" "$cert" "$tmp/load.jsonl" --threads "$threads" --seconds 15 &
  local load_pid=$!
  mark "before"; sleep 5
  mark "redis_stopped"
  kill "$(cat "$PRIVATE_REDIS_DIR/redis.pid")"
  sleep 10
  wait "$load_pid"
  mark "end"
  load report "$tmp/load.jsonl" "$tmp/phases.txt" | tee "$results/redis.txt"
  local s="$results/redis.txt" bad=0
  redis-cli -p "${VAULT_TEST_REDIS_URL##*:}" ping >/dev/null 2>&1 && { echo "faults:   FAIL Redis still answers"; bad=1; }
  check_summary "$s" 'set(s["before"]["answers"]) == {"201"} and set(s["redis_stopped"]["answers"]) == {"201"}' "only 201, before and after Redis stopped" || bad=1
  check_summary "$s" 's["redis_stopped"]["answers"]["201"] > 100' "more than 100 tokens while Redis is down" || bad=1
  grep -q 'shared rate limit unavailable' "$tmp/serve.log" && echo "faults:   ok   the vault logged the fallback to its own limits" ||
    { echo "faults:   FAIL no fallback logged (was Redis used at all?)"; bad=1; }
  load verify "$base" "$sk" "$cert" "$tmp/load.jsonl" | tee -a "$results/redis.txt" || bad=1
  [ "$bad" = 0 ] || fail "redis scenario"
  cleanup_scenario
}

scenario_disk_full() {
  echo "==> faults: disk full for the SQLite data directory (tmpfs)"
  new_tmp disk
  mkdir -p "$tmp/mnt"
  if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o size=24m,mode=0700 tmpfs "$tmp/mnt" 2>"$tmp/mount.log"; then
    cat "$tmp/mount.log" >&2 2>/dev/null || true
    fail "cannot mount a tmpfs (needs root); see RELIABILITY.md"
  fi
  mounted="$tmp/mnt"
  start_vault "$tmp/mnt/data"
  # Fill the filesystem up to the last ~200 KiB, then tokenize until it is full.
  local free
  free=$(( $(stat -f -c '%a*%S' "$tmp/mnt" ) ))
  head -c $(( free - 200 * 1024 )) /dev/zero >"$tmp/mnt/filler" 2>/dev/null || true
  echo "faults:   filesystem: $(df -h --output=size,used,avail "$tmp/mnt" | tail -1)"
  load run "$base" "$pk" "$cert" "$tmp/load.jsonl" --threads "$threads" --seconds 12 &
  local load_pid=$!
  mark "filling"; sleep 12
  wait "$load_pid"
  mark "full_checked"
  python3 - "$tmp/mnt/data/vault.db" <<'PY' | tee "$tmp/integrity.txt"
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print("integrity_check:", c.execute("PRAGMA integrity_check").fetchone()[0])
PY
  rm -f "$tmp/mnt/filler"
  mark "space_back"
  load run "$base" "$pk" "$cert" "$tmp/load.jsonl" --threads "$threads" --seconds 6
  mark "end"
  load report "$tmp/load.jsonl" "$tmp/phases.txt" | tee "$results/disk-full.txt"
  cat "$tmp/integrity.txt" >>"$results/disk-full.txt"
  local s="$results/disk-full.txt" bad=0
  check_summary "$s" 's["filling"]["answers"].get("503",0) > 0' "the disk filled up: 503 answers" || bad=1
  only_201_and_503 "$s" || bad=1
  check_summary "$s" 's["space_back"]["answers"].get("201",0) > 0 and s["space_back"]["first_201_after_start_s"] < 3' "space back: 201 again within 3 s" || bad=1
  grep -q 'integrity_check: ok' "$tmp/integrity.txt" && echo "faults:   ok   PRAGMA integrity_check: ok while full" || { echo "faults:   FAIL integrity_check"; bad=1; }
  load verify "$base" "$sk" "$cert" "$tmp/load.jsonl" | tee -a "$results/disk-full.txt" || bad=1
  # After a restart too: nothing acknowledged lost, database intact.
  kill "$vault_pid"; wait "$vault_pid" 2>/dev/null || true; vault_pid=""
  start_vault "$tmp/mnt/data"
  load verify "$base" "$sk" "$cert" "$tmp/load.jsonl" | tee -a "$results/disk-full.txt" || bad=1
  [ "$bad" = 0 ] || { grep -v '"level":"INFO"' "$tmp/serve.log" | tail -20 >&2; fail "disk-full scenario"; }
  cleanup_scenario
}

scenario_slowloris() {
  echo "==> faults: slowloris (connections dribbling headers) next to a normal client"
  new_tmp slowloris
  start_vault "$tmp/data" --max-connections-per-client 100 --max-connections 1000
  python3 "$here/slowloris.py" "$base" "$cert" --slow 300 --seconds 25 --per-client-cap 100 \
    | tee "$results/slowloris.txt"
  local status=${PIPESTATUS[0]}
  [ "$status" = 0 ] || fail "slowloris scenario"
  cleanup_scenario
}

case "${1:-all}" in
  postgres) scenario_postgres ;;
  redis) scenario_redis ;;
  disk-full) scenario_disk_full ;;
  slowloris) scenario_slowloris ;;
  smoke) scenario_disk_full; scenario_slowloris ;;
  all) scenario_redis; scenario_disk_full; scenario_slowloris; scenario_postgres ;;
  *) echo "usage: faults.sh postgres|redis|disk-full|slowloris|smoke|all" >&2; exit 2 ;;
esac
echo "faults: all scenarios passed"
