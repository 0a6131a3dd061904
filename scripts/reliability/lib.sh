# Sourced by the reliability scripts (schemathesis.sh, faults.sh, soak.sh).
# shellcheck shell=bash

# vault_serve BIN PREFIX [serve args...]: starts `BIN serve --listen 127.0.0.1:0 ARGS` in the
# background (stdout PREFIX.out, stderr appended to PREFIX.log) and waits for its
# "listening on" line. Sets vault_pid and base (https://127.0.0.1:PORT).
vault_serve() {
  local bin="$1" prefix="$2"
  shift 2
  : >"$prefix.out"
  "$bin" serve --listen 127.0.0.1:0 "$@" >"$prefix.out" 2>>"$prefix.log" &
  vault_pid=$!
  for _ in $(seq 300); do grep -qs '^listening on https://' "$prefix.out" && break; sleep 0.05; done
  base="$(sed -n 's|^listening on \(https://127.0.0.1:[0-9]*\)$|\1|p' "$prefix.out")"
  if [ -z "$base" ]; then
    echo "the vault did not start:" >&2
    # The message, not the backtrace under it (RUST_BACKTRACE may be set).
    grep -Ev '^ +([0-9]+: | *at )' "$prefix.log" | tail -20 >&2
    return 1
  fi
}
