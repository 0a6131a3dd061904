#!/usr/bin/env bash
# Runs the demo: the vault (HTTPS, development certificate, embedded store) and a demo merchant
# checkout on another origin. Safe to run again: tools, build and data directory are reused.
#
#   scripts/demo.sh                      # vault https://localhost:8443, merchant http://127.0.0.1:8080
#   VAULT_PORT=9443 MERCHANT_PORT=9080 scripts/demo.sh
#
# Environment: VAULT_PORT (8443), MERCHANT_PORT (8080), DEMO_DATA_DIR (.data/demo),
# SKIP_SETUP=1 (skip scripts/setup.sh), SKIP_FRAME_BUILD=1 (reuse dist/ as it is).
# Stops both servers on Ctrl-C or SIGTERM.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$root/.tools/node_modules/.bin:$PATH"

VAULT_PORT="${VAULT_PORT:-8443}"
MERCHANT_PORT="${MERCHANT_PORT:-8080}"
DATA_DIR="${DEMO_DATA_DIR:-$root/.data/demo}"
MERCHANT_ORIGIN="http://127.0.0.1:$MERCHANT_PORT"
VAULT_URL="https://localhost:$VAULT_PORT"
KEYS_FILE="$DATA_DIR/demo-keys.json" # written by us: the keys `vault init` printed once

say() { printf '[demo] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port_free "$VAULT_PORT" || die "port $VAULT_PORT is in use (set VAULT_PORT)"
port_free "$MERCHANT_PORT" || die "port $MERCHANT_PORT is in use (set MERCHANT_PORT)"

# 1. Toolchain (idempotent).
if [ "${SKIP_SETUP:-0}" != 1 ]; then
  "$root/scripts/setup.sh"
fi

# 2. The card frame (Trunk output in dist/, served by the vault) and the two binaries.
if [ "${SKIP_FRAME_BUILD:-0}" != 1 ] || [ ! -f "$root/dist/index.html" ]; then
  say "building the card frame (scripts/build-frame.sh: trunk, release, offline)"
  "$root/scripts/build-frame.sh"
fi
say "building vault and demo-merchant"
cargo build --release -p vault -p demo-merchant
vault_bin="$root/target/release/vault"
merchant_bin="$root/target/release/demo-merchant"

# 3. A data directory with a test merchant whose publishable key allows the demo origin.
mkdir -p "$DATA_DIR"
if [ ! -s "$KEYS_FILE" ]; then
  [ -e "$DATA_DIR/vault.db" ] && die "$DATA_DIR is initialised but $KEYS_FILE is missing; remove $DATA_DIR to start over"
  say "initialising the vault in $DATA_DIR for origin $MERCHANT_ORIGIN"
  umask 077
  "$vault_bin" init --data-dir "$DATA_DIR" --merchant "Demo merchant" --allowed-origin "$MERCHANT_ORIGIN" >"$KEYS_FILE.tmp"
  printf '%s\n' "$MERCHANT_ORIGIN" >"$DATA_DIR/demo-origin"
  mv "$KEYS_FILE.tmp" "$KEYS_FILE"
  umask 022
else
  stored_origin="$(cat "$DATA_DIR/demo-origin" 2>/dev/null || true)"
  [ "$stored_origin" = "$MERCHANT_ORIGIN" ] ||
    die "$DATA_DIR was initialised for $stored_origin, not $MERCHANT_ORIGIN: use MERCHANT_PORT=${stored_origin##*:} or remove $DATA_DIR"
fi
json_field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" "$KEYS_FILE" | head -n1; }
PK="$(json_field publishable_key)"
SK="$(json_field secret_key)"
[ -n "$PK" ] && [ -n "$SK" ] || die "no publishable_key/secret_key in $KEYS_FILE"
# Payments (charge, refund, webhooks): a payments-role key charges, the admin key registers the
# merchant's /webhooks endpoint once at start. Data directories made before `init` printed a
# payments key run without payments.
PAYMENTS_KEY="$(json_field payments_key)"
ADMIN_KEY="$(json_field admin_key)"
payment_args=()
if [ -n "$PAYMENTS_KEY" ] && [ -n "$ADMIN_KEY" ]; then
  payment_args=(--payments-key "$PAYMENTS_KEY" --admin-key "$ADMIN_KEY")
else
  say "no payments_key in $KEYS_FILE: the demo runs without payments (remove $DATA_DIR to start over)"
fi

# The React checkouts (/react.html, /react-split.html) use the npm package without a bundler: web/package's dist/
# and React's UMD development builds (from .tools, scripts/setup.sh), served under /pkg/.
pkg_dir="$DATA_DIR/pkg"
node "$root/web/package/scripts/build.mjs" >/dev/null
mkdir -p "$pkg_dir"
cp "$root"/web/package/dist/*.js "$root/.tools/node_modules/react/umd/react.development.js" \
  "$root/.tools/node_modules/react-dom/umd/react-dom.development.js" "$pkg_dir/"

# 4. Start both, stop both.
pids=()
cleanup() {
  trap - INT TERM EXIT
  if [ "${#pids[@]}" -gt 0 ]; then
    say "stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

logs="$DATA_DIR/logs"
mkdir -p "$logs"
# wait_listening PID NAME WHAT: until $logs/NAME.out says "listening on" (10 s), or PID died.
wait_listening() {
  for _ in $(seq 1 100); do
    grep -q "listening on" "$logs/$2.out" 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || { cat "$logs/$2.log" >&2; die "$3 did not start"; }
    sleep 0.1
  done
  die "$3 did not say it was listening (see $logs/$2.log)"
}
"$vault_bin" serve --data-dir "$DATA_DIR" --listen "127.0.0.1:$VAULT_PORT" --frame-dir "$root/dist" \
  --public-origin "$VAULT_URL" --public-origin "https://127.0.0.1:$VAULT_PORT" --log-format text \
  >"$logs/vault.out" 2>"$logs/vault.log" &
pids+=("$!")
wait_listening "${pids[0]}" vault "the vault"

DEMO_SECRET_KEY="$SK" "$merchant_bin" "${payment_args[@]}" --listen "127.0.0.1:$MERCHANT_PORT" --vault-url "$VAULT_URL" \
  --publishable-key "$PK" --vault-ca-cert "$DATA_DIR/tls/cert.pem" --static-dir "$root/static/demo" \
  --package-dir "$pkg_dir" \
  >"$logs/merchant.out" 2>"$logs/merchant.log" &
pids+=("$!")
wait_listening "${pids[1]}" merchant "the demo merchant"

cat <<EOF

  Vault (card frame, API):   $VAULT_URL
  Demo checkout:             $MERCHANT_ORIGIN/
  Styled variant:            $MERCHANT_ORIGIN/?theme=styled
  React checkout (npm pkg):  $MERCHANT_ORIGIN/react.html
  React split fields:        $MERCHANT_ORIGIN/react-split.html
  Benchmark page:            $MERCHANT_ORIGIN/bench.html

  The vault uses a self-signed development certificate ($DATA_DIR/tls/cert.pem).
  Open $VAULT_URL/healthz once in the same browser and accept the warning,
  then open the demo checkout. Test card: 4242 4242 4242 4242, any future date, any CVC.
  After paying, the page shows the payment, a Refund button and the signed webhooks the
  merchant server received and verified. Declines: 4000 0000 0000 0002 (see docs/http-api.md).

  Logs: $logs   ·   Ctrl-C stops both servers.

EOF

# Exit (and clean up) as soon as either server stops.
wait -n "${pids[@]}" || true
say "a server stopped; see $logs"
