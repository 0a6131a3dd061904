#!/usr/bin/env bash
# TLS probes against a real vault: starts two vaults on temporary data directories (the
# generated ECDSA development certificate, and an RSA certificate so that RSA key exchange
# could be chosen at all), then with Debian's `openssl s_client` and hand-built ClientHellos
# (tls_hello.py, for what OpenSSL 3 cannot offer any more) checks:
#   refused: SSLv3, TLS 1.0, TLS 1.1; TLS 1.2 with RSA key exchange, CBC, 3DES, RC4, NULL,
#            EXPORT, anonymous or finite-field DHE suites; plaintext HTTP on the TLS port;
#   accepted: TLS 1.2 ECDHE-ECDSA/RSA-AES-GCM, TLS 1.3;
# and that every TLS 1.2 suite this OpenSSL knows, tried one at a time, is refused unless it
# is ECDHE with AES-GCM or ChaCha20-Poly1305.
# Each refusal counts only if the same client command succeeds against a deliberately weak
# local `openssl s_server` (the control): a client that cannot offer the weak thing proves
# nothing. Everything it starts is stopped, and its directory removed, on exit.
#
#   scripts/reliability/tls-probe.sh              # build (if needed) and probe target/debug/vault
#   VAULT_BIN=path/to/vault scripts/reliability/tls-probe.sh
#   TLS_PROBE_SELFTEST=1 scripts/reliability/tls-probe.sh   # probe the weak control server as
#                                                            # if it were the vault: must FAIL
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/scripts/reliability"
export PATH="$HOME/.cargo/bin:$PATH"
vault="${VAULT_BIN:-$root/target/debug/vault}"
if [ ! -x "$vault" ]; then
  (cd "$root" && cargo build -p vault --locked --quiet)
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/tls-probe.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "tls-probe: nothing listening on port $1" >&2
  return 1
}

# Certificates for the RSA vault and the control server.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$tmp/rsa.key" -out "$tmp/rsa.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$tmp/ec.key" -out "$tmp/ec.pem" 2>/dev/null

start_vault() { # name [serve args...] -> sets port_<name>
  local name="$1"
  shift
  "$vault" init --data-dir "$tmp/$name" --merchant "TLS probe" >/dev/null 2>"$tmp/$name.init.log"
  mkdir -p "$tmp/frame"
  "$vault" serve --data-dir "$tmp/$name" --listen 127.0.0.1:0 --frame-dir "$tmp/frame" "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.log" &
  pids+=("$!")
  for _ in $(seq 200); do
    if grep -qs '^listening on https://' "$tmp/$name.out"; then break; fi
    sleep 0.05
  done
  local port
  port="$(sed -n 's|^listening on https://127.0.0.1:\([0-9]*\)$|\1|p' "$tmp/$name.out")"
  [ -n "$port" ] || { echo "tls-probe: vault $name did not start:" >&2; cat "$tmp/$name.log" >&2; exit 1; }
  printf -v "port_$name" '%s' "$port"
}

start_vault ec
start_vault rsa --tls-cert "$tmp/rsa.pem" --tls-key "$tmp/rsa.key"

# The control: everything this OpenSSL can still do, TLS 1.0 up, security level 0.
port_weak="$(free_port)"
openssl s_server -quiet -naccept 100000 -accept "127.0.0.1:$port_weak" -min_protocol TLSv1 \
  -cert "$tmp/rsa.pem" -key "$tmp/rsa.key" -dcert "$tmp/ec.pem" -dkey "$tmp/ec.key" \
  -cipher 'ALL:eNULL:@SECLEVEL=0' </dev/null >"$tmp/weak.log" 2>&1 &
pids+=("$!")
wait_port "$port_weak"

if [ -n "${TLS_PROBE_SELFTEST:-}" ]; then
  echo "tls-probe: SELF-TEST: probing the weak control server as if it were the vault (must fail)"
  port_ec="$port_weak"
  port_rsa="$port_weak"
fi

failures=0
checks=0
row() { printf '  %-8s %-44s %-9s %s\n' "$@"; }
verdict() { # expected got what detail
  checks=$((checks + 1))
  if [ "$1" = "$2" ]; then row ok "$3" "$2" "$4"; else row FAIL "$3" "$2" "$4 (expected $1)"; failures=$((failures + 1)); fi
}

# One s_client handshake: prints accepted/refused/client-cannot.
handshake() { # port [s_client args...]
  local port="$1" out
  shift
  out="$(timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost "$@" </dev/null 2>&1)" || true
  if grep -q 'no protocols available\|no cipher match\|no ciphers available\|Error with command' <<<"$out"; then
    echo client-cannot
  elif grep -q '^New, [A-Za-z0-9.]*, Cipher is ' <<<"$out" && ! grep -q 'Cipher is (NONE)' <<<"$out"; then
    # "New, <the suite's own minimum version>, Cipher is X"; the negotiated one is "Protocol  :".
    echo "accepted $(sed -n 's/^ *Protocol *: *//p' <<<"$out" | head -1) $(sed -n 's/^New, .*, Cipher is //p' <<<"$out" | head -1)"
  else
    echo "refused $(grep -o 'alert [a-z ]*\|errno=[0-9]*\|wrong version number\|unexpected eof[a-z ]*' <<<"$out" | head -1)"
  fi
}

must_refuse() { # label port [s_client args...]
  local label="$1" port="$2" control result
  shift 2
  control="$(handshake "$port_weak" "$@")"
  if [[ "$control" != accepted* ]]; then
    verdict accepted "control: $control" "$label" "client cannot offer it here: the probe proves nothing"
    return
  fi
  result="$(handshake "$port" "$@")"
  verdict refused "${result%% *}" "$label" "${result#* }"
}

must_accept() { # label port [s_client args...]
  local label="$1" port="$2" result
  shift 2
  result="$(handshake "$port" "$@")"
  verdict accepted "${result%% *}" "$label" "${result#* }"
}

raw() { # label expected port version suites
  local result
  result="$(python3 "$here/tls_hello.py" 127.0.0.1 "$3" "$4" "$5")"
  verdict "$2" "${result%% *}" "$1" "${result#* }"
}

low='DEFAULT:@SECLEVEL=0'
echo "==> protocol versions (vaults: ecdsa :$port_ec, rsa :$port_rsa; weak control :$port_weak)"
for p in ec rsa; do
  port_var="port_$p"
  port="${!port_var}"
  must_refuse "TLS 1.0 ($p)" "$port" -tls1 -cipher "$low"
  must_refuse "TLS 1.1 ($p)" "$port" -tls1_1 -cipher "$low"
  raw "SSLv3 hello, raw ($p)" refused "$port" ssl3 0x002f,0x0035,0x000a,0x0005
  raw "TLS 1.0 hello, raw ($p)" refused "$port" tls1.0 0xc013,0xc014,0xc009,0x002f
  must_accept "TLS 1.3 ($p)" "$port" -tls1_3
  raw "TLS 1.2 ECDHE-GCM hello, raw (control, $p)" accepted "$port" tls1.2 0xc02b,0xc02f
done

echo "==> TLS 1.2 cipher suites"
must_accept "ECDHE-ECDSA-AES128-GCM-SHA256" "$port_ec" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256
must_accept "ECDHE-ECDSA-AES256-GCM-SHA384" "$port_ec" -tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384
must_accept "ECDHE-RSA-AES128-GCM-SHA256" "$port_rsa" -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
must_accept "ECDHE-RSA-AES256-GCM-SHA384" "$port_rsa" -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384
must_refuse "RSA kx AES128-GCM-SHA256 (rsa)" "$port_rsa" -tls1_2 -cipher AES128-GCM-SHA256
must_refuse "RSA kx AES256-SHA256 (rsa)" "$port_rsa" -tls1_2 -cipher AES256-SHA256
must_refuse "RSA kx AES128-SHA (rsa)" "$port_rsa" -tls1_2 -cipher AES128-SHA
must_refuse "CBC ECDHE-RSA-AES128-SHA (rsa)" "$port_rsa" -tls1_2 -cipher ECDHE-RSA-AES128-SHA
must_refuse "CBC ECDHE-ECDSA-AES256-SHA (ec)" "$port_ec" -tls1_2 -cipher ECDHE-ECDSA-AES256-SHA
must_refuse "CBC ECDHE-ECDSA-AES128-SHA256 (ec)" "$port_ec" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256
must_refuse "DHE-RSA-AES128-GCM-SHA256 (rsa)" "$port_rsa" -tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256
must_refuse "NULL ECDHE-ECDSA-NULL-SHA (ec)" "$port_ec" -tls1_2 -cipher 'ECDHE-ECDSA-NULL-SHA:@SECLEVEL=0'
must_refuse "NULL NULL-SHA256 (rsa)" "$port_rsa" -tls1_2 -cipher 'NULL-SHA256:@SECLEVEL=0'
must_refuse "anon AECDH-AES128-SHA (ec)" "$port_ec" -tls1_2 -cipher 'AECDH-AES128-SHA:@SECLEVEL=0'
# Gone from OpenSSL 3 altogether, so offered in a hand-built TLS 1.2 ClientHello.
for p in ec rsa; do
  port_var="port_$p"
  port="${!port_var}"
  raw "3DES, raw ($p)" refused "$port" tls1.2 0x000a,0xc012,0xc008,0x0016
  raw "RC4, raw ($p)" refused "$port" tls1.2 0x0005,0x0004,0xc011,0xc007
  raw "EXPORT, raw ($p)" refused "$port" tls1.2 0x0003,0x0006,0x0008,0x0014,0x0062,0x0064
  raw "NULL, raw ($p)" refused "$port" tls1.2 0x0001,0x0002,0x003b,0xc006,0xc010
done

echo "==> every TLS 1.2 suite of this OpenSSL, one at a time"
export -f handshake
suites="$(openssl ciphers -tls1_2 -s 'ALL:eNULL:@SECLEVEL=0' | tr ':' '\n' | grep -v '^TLS_')" # TLS_*: 1.3 suites
accepted_list=()
while read -r p suite result; do
  checks=$((checks + 1))
  case "$result" in
    accepted*)
      accepted_list+=("$suite($p)")
      case "$suite" in
        ECDHE-*-AES*-GCM-SHA*|ECDHE-*-CHACHA20-POLY1305) ;;
        *) row FAIL "$suite ($p)" accepted "weak suite accepted"; failures=$((failures + 1)) ;;
      esac ;;
    client-cannot) row FAIL "$suite ($p)" client-cannot "this OpenSSL listed it but cannot offer it"; failures=$((failures + 1)) ;;
  esac
done < <(for s in $suites; do echo "ec $port_ec $s"; echo "rsa $port_rsa $s"; done |
  xargs -P 4 -n 3 bash -c 'echo "$0 $2 $(handshake "$1" -tls1_2 -cipher "$2:@SECLEVEL=0")"')
row info "TLS 1.2 suites tried" "$(wc -w <<<"$suites")" "on each vault"
row info "accepted TLS 1.2 suites" "${#accepted_list[@]}" "${accepted_list[*]}"

echo "==> plaintext HTTP on the TLS port"
for p in ec rsa; do
  port_var="port_$p"
  port="${!port_var}"
  body="$(curl -sS --max-time 5 -o - -w '%{http_code}' "http://127.0.0.1:$port/healthz" 2>/dev/null || true)"
  if [[ "$body" =~ ^[1-5][0-9][0-9]$ ]] || [[ "$body" == *HTTP/* ]]; then
    verdict refused accepted "plain HTTP GET /healthz ($p)" "got an HTTP answer: $body"
  else
    verdict refused refused "plain HTTP GET /healthz ($p)" "no HTTP answer"
  fi
  code="$(curl -sS --max-time 5 -k -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/healthz" 2>/dev/null || true)"
  verdict 200 "$code" "HTTPS GET /healthz (control, $p)" "the same port over TLS"
done
# The control for the plaintext check: a plaintext server is detected as one.
port_plain="$(free_port)"
python3 -m http.server --bind 127.0.0.1 "$port_plain" --directory "$tmp/frame" >/dev/null 2>&1 &
pids+=("$!")
wait_port "$port_plain"
code="$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port_plain/" 2>/dev/null || true)"
verdict 200 "$code" "plain HTTP to a plaintext server (control)" "the check sees plaintext when there is some"

echo
if [ "$failures" -gt 0 ]; then
  echo "tls-probe: FAILED: $failures of $checks checks"
  exit 1
fi
echo "tls-probe: ok: $checks checks"
