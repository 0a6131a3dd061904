#!/usr/bin/env bash
# Leak scan: looks for the test card numbers (every 13-19 digit Luhn-valid number in the test
# sources), formatted or not, in UTF-8 or UTF-16, and their last 8 digits, in what the tests and
# the vault leave behind at run time -- never in source code. Fails loudly on a hit, printing
# the file, the byte offset and the masked number only.
#
#   scripts/reliability/leak-scan.sh          # the step at the end of scripts/test.sh:
#     1. self-test: plants a PAN four ways in a scratch dir; the scanner must find all four;
#     2. runs a vault of its own: tokenizes and detokenizes every test PAN it accepts over
#        HTTPS, stops it, and scans its whole data dir (SQLite db, -wal, -shm, -journal) and logs;
#     3. scans what the test run left: artifacts/ (e2e logs, screenshots), target/reliability/
#        (watch-mode captures), and any e2e temp dirs still in $TMPDIR.
#   scripts/reliability/leak-scan.sh watch -- CMD [ARGS...]
#     runs CMD (e.g. `cargo test -p e2e --test browser`) while hard-linking every file of the
#     e2e vault data dirs, Chromium profiles and tempfile dirs it creates in $TMPDIR into
#     target/reliability/watch/ (a hard link keeps a file's last content after its TempDir is
#     deleted), then scans them. The e2e harness and the vault tests delete those directories
#     when they finish, so a scan after the run cannot see them any other way.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/scripts/reliability"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
tmpdir="${TMPDIR:-/tmp}"
work="$root/target/reliability"
mkdir -p "$work"
scan() { python3 "$here/leak_scan.py" scan "$root" "$@"; }

if [ "${1:-}" = "watch" ]; then
  [ "${2:-}" = "--" ] || { echo "usage: leak-scan.sh watch -- CMD [ARGS...]" >&2; exit 2; }
  shift 2
  shadow="$work/watch"
  rm -rf "$shadow"
  mkdir -p "$shadow"
  marker="$work/watch.start"
  touch "$marker"
  (
    # Every 0.2 s: hard-link each file of matching temp dirs created after the start. Same
    # inode: skipped; a new inode under an old name: the old link is kept as name.~N~.
    while :; do
      for d in "$tmpdir"/e2e-vault-* "$tmpdir"/e2e-chromium-* "$tmpdir"/.tmp*; do
        [ -d "$d" ] && [ "$d" -nt "$marker" ] || continue
        cp -al --backup=numbered -T "$d" "$shadow/$(basename "$d")" 2>/dev/null || true
      done
      sleep 0.2
    done
  ) &
  linker=$!
  set +e
  "$@"
  status=$?
  set -e
  kill "$linker" 2>/dev/null || true
  wait "$linker" 2>/dev/null || true
  echo "leak-scan: watched \`$*\` (exit $status); captured $(find "$shadow" -type f | wc -l) files"
  scan "$shadow" artifacts
  exit "$status"
fi

echo "==> leak-scan 1/3: self-test (planted leaks must be found)"
plant="$(mktemp -d "$tmpdir/leak-plant.XXXXXX")"
trap 'rm -rf "$plant"' EXIT
python3 "$here/leak_scan.py" plant "$root" "$plant"
if out="$(scan "$plant")"; then
  echo "$out"
  echo "leak-scan: FAILED: the planted leaks were not found; the scanner is broken" >&2
  exit 1
fi
planted_hits="$(grep -c '^LEAK: ' <<<"$out" || true)"
for f in planted.log planted-spaced.log planted-utf16.ldb planted-last8.db-wal; do
  grep -q "^LEAK: $plant/$f " <<<"$out" || { echo "$out"; echo "leak-scan: FAILED: plant $f not found" >&2; exit 1; }
done
echo "leak-scan: self-test ok ($planted_hits hits in 4 planted files)"

echo "==> leak-scan 2/3: a vault of our own, every test PAN tokenized and detokenized"
vault="${VAULT_BIN:-$root/target/debug/vault}"
[ -x "$vault" ] || cargo build -p vault --locked --quiet
run="$work/leak-run"
rm -rf "$run"
mkdir -p "$run/frame"
"$vault" init --data-dir "$run/data" --merchant "Leak scan" >"$run/init.json" 2>"$run/init.log"
RUST_LOG="${LEAK_SCAN_VAULT_LOG:-debug}" "$vault" serve --data-dir "$run/data" --listen 127.0.0.1:0 \
  --frame-dir "$run/frame" --log-format json >"$run/serve.out" 2>"$run/serve.log" &
vault_pid=$!
trap 'kill "$vault_pid" 2>/dev/null || true; rm -rf "$plant"' EXIT
for _ in $(seq 200); do grep -qs '^listening on https://' "$run/serve.out" && break; sleep 0.05; done
base="$(sed -n 's|^listening on \(https://127.0.0.1:[0-9]*\)$|\1|p' "$run/serve.out")"
[ -n "$base" ] || { echo "leak-scan: the vault did not start" >&2; cat "$run/serve.log" >&2; exit 1; }
read -r pk sk < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["publishable_key"], d["secret_key"])' "$run/init.json")
created=0
refused=0
while read -r pan; do
  body="$(printf '{"card":{"number":"%s","exp_month":12,"exp_year":2030,"cvc":"123","name":"Leak Scan"}}' "$pan")"
  answer="$(curl -sk --max-time 10 -X POST "$base/v1/tokens" -H "Origin: $base" -H "Authorization: Bearer $pk" \
    -H 'Content-Type: application/json' --data-binary "$body" || true)"
  token="$(grep -o '"id":"tok_[A-Za-z0-9]*"' <<<"$answer" | head -1 | cut -d'"' -f4 || true)"
  if [ -z "$token" ]; then refused=$((refused + 1)); continue; fi
  created=$((created + 1))
  curl -sk --max-time 10 "$base/v1/tokens/$token" -H "Authorization: Bearer $sk" >/dev/null
  curl -sk --max-time 10 -X POST "$base/v1/tokens/$token/detokenize" -H "Authorization: Bearer $sk" >/dev/null
  # The card number in a URL is refused without being logged.
  curl -sk --max-time 10 "$base/v1/tokens/$pan" -H "Authorization: Bearer $sk" >/dev/null
done < <(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import leak_scan; print("\n".join(leak_scan.test_pans(sys.argv[2])))' "$here" "$root")
# The live files too: the WAL and shared memory exist only while the vault runs (SQLite folds
# the WAL into the database and removes it at a clean shutdown).
cp -a "$run/data" "$run/data-live"
kill -TERM "$vault_pid"
wait "$vault_pid" 2>/dev/null || true
echo "leak-scan: $created tokens created, $refused test numbers refused by the vault"
[ "$created" -gt 0 ] || { echo "leak-scan: FAILED: no token created; nothing was exercised" >&2; cat "$run/serve.log" >&2; exit 1; }
(cd "$run" && ls data data-live | tr '\n' ' ' | sed 's/^/  files: /'; echo)
scan "$run"

echo "==> leak-scan 3/3: what the test run left behind"
targets=()
[ -d artifacts ] && targets+=(artifacts)
[ -d "$work/watch" ] && targets+=("$work/watch")
for d in "$tmpdir"/e2e-vault-* "$tmpdir"/e2e-chromium-*; do [ -d "$d" ] && targets+=("$d"); done
if [ "${#targets[@]}" -eq 0 ]; then
  echo "leak-scan: no artifacts/ (run the e2e tests first); nothing else to scan"
else
  scan "${targets[@]}"
fi
