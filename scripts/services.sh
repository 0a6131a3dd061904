#!/usr/bin/env bash
# Sourced by scripts/test.sh: makes sure the Postgres and Redis the tests need answer, and
# exports VAULT_TEST_DATABASE_URL and VAULT_TEST_REDIS_URL (same rules for Redis as for
# Postgres below: the given URL, else 127.0.0.1:6379, else a private `redis-server`).
#
# - VAULT_TEST_DATABASE_URL already set: used as is.
# - A server on 127.0.0.1:5432 with trust auth and a database `test` (this machine kind, CI):
#   used.
# - Otherwise (a fresh machine, or VAULT_PRIVATE_POSTGRES=1): Debian's `postgresql` is
#   installed if missing and a private instance is started in a temporary directory on a free
#   port, owned by the `postgres` user; it is stopped when the test run exits. No system
#   service is touched.
# The tests never skip: if none of this works, the run fails here and says why.

if ! declare -f need_root >/dev/null; then
  need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
fi

ensure_postgres() {
  if [ -n "${VAULT_TEST_DATABASE_URL:-}" ]; then
    return 0
  fi
  local shared="postgres://postgres@127.0.0.1:5432/test"
  if [ "${VAULT_PRIVATE_POSTGRES:-0}" != 1 ] && command -v psql >/dev/null &&
    psql "$shared" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    export VAULT_TEST_DATABASE_URL="$shared"
    return 0
  fi
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "[services] installing Debian's postgresql (no server answers on 127.0.0.1:5432)" >&2
    need_root apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  fi
  local bin dir port as_pg
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  dir="$(mktemp -d /tmp/vault-test-pg.XXXXXX)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$dir"
    as_pg=(runuser -u postgres --)
  else
    as_pg=()
  fi
  echo "[services] starting a private Postgres on 127.0.0.1:$port in $dir" >&2
  "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; echo "[services] initdb failed" >&2; return 1; }
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null ||
    { cat "$dir/server.log" >&2; echo "[services] Postgres did not start" >&2; return 1; }
  PRIVATE_PG=("${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop)
  PRIVATE_PG_DIR="$dir"
  trap 'stop_private_postgres; stop_private_redis' EXIT
  "${as_pg[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  export VAULT_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/test"
}

stop_private_postgres() {
  if [ -n "${PRIVATE_PG[*]:-}" ]; then
    "${PRIVATE_PG[@]}" >/dev/null 2>&1 || true
    rm -rf "${PRIVATE_PG_DIR:?}"
  fi
}

ensure_redis() {
  if [ -n "${VAULT_TEST_REDIS_URL:-}" ]; then
    return 0
  fi
  if [ "${VAULT_PRIVATE_REDIS:-0}" != 1 ] && command -v redis-cli >/dev/null &&
    [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then
    export VAULT_TEST_REDIS_URL="redis://127.0.0.1:6379"
    return 0
  fi
  if ! command -v redis-server >/dev/null; then
    echo "[services] installing Debian's redis-server (no Redis answers on 127.0.0.1:6379)" >&2
    need_root apt-get update -qq
    need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  fi
  local dir port
  dir="$(mktemp -d /tmp/vault-test-redis.XXXXXX)"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  echo "[services] starting a private Redis on 127.0.0.1:$port" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" ||
    { echo "[services] Redis did not start" >&2; return 1; }
  PRIVATE_REDIS_DIR="$dir"
  trap 'stop_private_postgres; stop_private_redis' EXIT
  for _ in $(seq 1 50); do
    [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  export VAULT_TEST_REDIS_URL="redis://127.0.0.1:$port"
}

stop_private_redis() {
  if [ -n "${PRIVATE_REDIS_DIR:-}" ] && [ -f "$PRIVATE_REDIS_DIR/redis.pid" ]; then
    kill "$(cat "$PRIVATE_REDIS_DIR/redis.pid")" 2>/dev/null || true
    rm -rf "${PRIVATE_REDIS_DIR:?}"
  fi
}
