#!/usr/bin/env bash
# Three vault instances on one Postgres database, on one machine: prints their URLs and keys;
# Ctrl-C stops them. See docs/deploy.md for running them behind a load balancer.
#
#   ./scripts/cluster.sh                      # Postgres on 127.0.0.1:5432 (database vault_cluster),
#                                             # or a private one started for the occasion
#   VAULT_DATABASE_URL=postgres://… ./scripts/cluster.sh
#   CLUSTER_PORTS="9443 9444" ./scripts/cluster.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
profile="${PROFILE:-release}"
ports=(${CLUSTER_PORTS:-8443 8444 8445})
data="$root/.data/cluster"
mkdir -p "$data"

say() { printf '[cluster] %s\n' "$*" >&2; }

# The database: the URL given, else the local server's `vault_cluster` database, else a
# private Postgres (scripts/services.sh).
if [ -z "${VAULT_DATABASE_URL:-}" ]; then
  if psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    psql "postgres://postgres@127.0.0.1:5432/postgres" -Atqc \
      "SELECT 1 FROM pg_database WHERE datname = 'vault_cluster'" | grep -q 1 ||
      psql "postgres://postgres@127.0.0.1:5432/postgres" -qc "CREATE DATABASE vault_cluster"
    export VAULT_DATABASE_URL="postgres://postgres@127.0.0.1:5432/vault_cluster"
  else
    # shellcheck source=scripts/services.sh
    source scripts/services.sh
    VAULT_PRIVATE_POSTGRES=1 ensure_postgres
    export VAULT_DATABASE_URL="$VAULT_TEST_DATABASE_URL"
  fi
fi

# One master key shared by every instance, kept outside the data directory.
key="$root/.data/cluster-master.key"
if [ ! -s "$key" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 >"$key")
fi
export VAULT_MASTER_KEY_FILE="$key"

say "building the vault ($profile)"
if [ "$profile" = release ]; then cargo build -q --release -p vault; else cargo build -q -p vault; fi
vault="${CARGO_TARGET_DIR:-$root/target}/$profile/vault"

if ! "$vault" keys list --data-dir "$data" >/dev/null 2>&1; then
  say "initialising the shared database"
  "$vault" init --data-dir "$data" --merchant "Cluster Shop" --allowed-origin https://localhost:8080 >"$data/init.json"
fi

pids=()
stop() {
  say "stopping ${#pids[@]} instances"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  exit 0
}
trap stop INT TERM

for port in "${ports[@]}"; do
  "$vault" serve --data-dir "$data" --listen "127.0.0.1:$port" --frame-dir "$root/dist" \
    --public-origin "https://localhost:$port" --log-format text >"$data/serve-$port.out" 2>"$data/serve-$port.log" &
  pids+=("$!")
done
for port in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    grep -q "listening on" "$data/serve-$port.out" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "listening on" "$data/serve-$port.out" || { say "instance on $port did not start:"; cat "$data/serve-$port.log" >&2; stop; }
  echo "vault instance: https://localhost:$port   (log: $data/serve-$port.log)"
done
echo "database: ${VAULT_DATABASE_URL%%\?*}"
echo "keys (printed once at init): $data/init.json"
echo "Ctrl-C stops the instances."
wait
