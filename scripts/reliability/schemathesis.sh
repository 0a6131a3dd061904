#!/usr/bin/env bash
# API schema testing: Schemathesis (pinned, .tools/venv) against the OpenAPI document a running
# vault serves (GET /v1/openapi.json), every operation, with real keys made by `vault init` for
# this run (publishable, tokenization, admin, read-only: scripts/reliability/schemathesis/hooks.py
# gives each operation the key whose role may call it).
# Checks: no 5xx (not_a_server_error), status codes, content types, headers and bodies as
# documented (status_code_conformance, content_type_conformance, response_headers_conformance,
# response_schema_conformance), invalid input refused (negative_data_rejection), and our own
# no_card_data_echoed (hooks.py). Exit status non-zero on any failure.
#
#   scripts/reliability/schemathesis.sh smoke    # bounded: 30 examples per operation, <= 100 s
#                                               # (the step of scripts/test.sh)
#   scripts/reliability/schemathesis.sh full     # long: 1,000 examples per operation plus the
#                                               # stateful phase, <= 20 minutes
#   VAULT_BIN=... SCHEMATHESIS_EXTRA='--seed 1' scripts/reliability/schemathesis.sh smoke
# Everything it starts is stopped, and its directory removed, on exit (kept with KEEP=1).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/scripts/reliability"
export PATH="$HOME/.cargo/bin:$PATH"
# Nothing written into the checkout: no bytecode caches; schemathesis runs in its temp dir
# (it keeps a .schemathesis/ cache in the working directory).
export PYTHONDONTWRITEBYTECODE=1
mode="${1:-smoke}"
case "$mode" in
  smoke) examples=30 max_time=100 phases=examples,coverage,fuzzing ;;
  full) examples=1000 max_time=1200 phases=examples,coverage,fuzzing,stateful ;;
  *) echo "usage: schemathesis.sh smoke|full" >&2; exit 2 ;;
esac

bash "$here/venv.sh"
st="$root/.tools/venv/bin/schemathesis"
vault="${VAULT_BIN:-$root/target/debug/vault}"
[ -x "$vault" ] || (cd "$root" && cargo build -p vault --locked --quiet)

tmp="$(mktemp -d "${TMPDIR:-/tmp}/schemathesis.XXXXXX")"
vault_pid=""
cleanup() {
  if [ -n "$vault_pid" ]; then kill "$vault_pid" 2>/dev/null || true; wait "$vault_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "schemathesis: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# A frame directory with the files the frame routes serve, so they answer 200 rather than 404.
mkdir -p "$tmp/frame"
printf '<!doctype html><title>frame</title><script src="frame-0123456789abcdef.js"></script>\n' >"$tmp/frame/index.html"
printf '/* loader */\n' >"$tmp/frame/loader.js"
printf '/* frame */\n' >"$tmp/frame/frame-0123456789abcdef.js"

"$vault" init --data-dir "$tmp/data" --merchant "Schemathesis" >"$tmp/init.json" 2>"$tmp/init.log"
# Spare keys the run may revoke, rotate and change in place of its own (hooks.py).
for kind in publishable secret; do
  role=()
  [ "$kind" = secret ] && role=(--role read_only)
  "$vault" keys create --data-dir "$tmp/data" --merchant "Schemathesis" --kind "$kind" "${role[@]}" \
    --label spare >>"$tmp/spare.json" 2>>"$tmp/init.log"
done
# Rate limits far above what one client sends here: the run is about the contract, not the
# limiter (429s are still documented and allowed).
# shellcheck source=scripts/reliability/lib.sh
source "$here/lib.sh"
vault_serve "$vault" "$tmp/serve" --data-dir "$tmp/data" --frame-dir "$tmp/frame" \
  --rate-limit-ip 100000 --rate-limit-ip-burst 100000 --rate-limit-key 100000 --rate-limit-key-burst 100000

eval "$(python3 - "$tmp/init.json" "$tmp/spare.json" <<'PY'
import json, shlex, sys
d = json.load(open(sys.argv[1]))
for var, field in [("VAULT_PK", "publishable_key"), ("VAULT_SK", "secret_key"),
                   ("VAULT_ADMIN_KEY", "admin_key"), ("VAULT_READ_ONLY_KEY", "read_only_key"),
                   ("VAULT_PAYMENTS_KEY", "payments_key")]:
    print(f"export {var}={shlex.quote(d[field])}")
print(f"cert={shlex.quote(d['tls']['cert'])}")
print("export VAULT_OWN_KEY_IDS=" + shlex.quote(",".join(k["id"] for k in d["keys"])))
spare = [json.loads(line)["id"] for line in open(sys.argv[2]) if line.strip()]
print("export VAULT_SPARE_KEY_IDS=" + shlex.quote(",".join(spare)))
PY
)"
export VAULT_ORIGIN="$base" VAULT_FRAME_FILES="index.html,loader.js,frame-0123456789abcdef.js"
export SCHEMATHESIS_HOOKS=hooks
export PYTHONPATH="$here/schemathesis${PYTHONPATH:+:$PYTHONPATH}"

# The custom check must be able to fail: planted echoes first.
(cd "$here/schemathesis" && "$root/.tools/venv/bin/python" hooks.py)

# SCHEMATHESIS_SCHEMA=crates/vault/openapi.json tests a document being edited against the
# running binary (no rebuild); by default the document the vault serves.
if [ -n "${SCHEMATHESIS_SCHEMA:-}" ]; then location=("$(realpath "$SCHEMATHESIS_SCHEMA")" --url "$base"); else location=("$base/v1/openapi.json"); fi
export PYTHONHASHSEED=0
echo "schemathesis: $mode run against ${location[0]} ($examples examples per operation, at most ${max_time}s)"
set +e
cd "$tmp"
# shellcheck disable=SC2086
nice -n 5 "$st" --config-file "$here/schemathesis/schemathesis.toml" run "${location[@]}" \
  --tls-verify "$cert" \
  --phases "$phases" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,no_card_data_echoed \
  --max-examples "$examples" --max-time "$max_time" --workers 1 --seed "${SCHEMATHESIS_SEED:-$RANDOM}" \
  --request-timeout 10 --no-color \
  --report junit,ndjson --report-dir "$tmp/report" \
  ${SCHEMATHESIS_EXTRA:-} 2>&1 | tee "$tmp/run.log"
status=${PIPESTATUS[0]}
set -e
cd "$root"
mkdir -p "$root/target/reliability"
cp "$tmp/run.log" "$root/target/reliability/schemathesis-$mode.log"
if grep -q '"level":"ERROR"' "$tmp/serve.log"; then
  echo "schemathesis: the vault logged errors during the run:" >&2
  grep '"level":"ERROR"' "$tmp/serve.log" | head -20 >&2
fi
if [ "$status" -ne 0 ]; then
  # The reports hold every request sent, test card numbers included: kept only to debug a
  # failure (the leak scan's step 3 does not look there; delete them once read).
  rm -rf "$root/target/reliability/schemathesis-$mode"
  cp -r "$tmp/report" "$root/target/reliability/schemathesis-$mode"
  echo "schemathesis: FAILED (exit $status); log in target/reliability/schemathesis-$mode.log, reports (with test card numbers) in target/reliability/schemathesis-$mode/" >&2
fi
exit "$status"
