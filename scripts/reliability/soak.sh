#!/usr/bin/env bash
# Soak: tokenize load at about half the measured maximum rate for a long time, watching the
# vault's memory (RSS), open file descriptors, latency and errors.
#
#   scripts/reliability/soak.sh [MINUTES]     # default 10; release build of the vault
#   SOAK_BIN=target/debug/vault SOAK_SEGMENT=10 scripts/reliability/soak.sh 1   # a short smoke
# Steps: (1) max rate: wrk, 32 connections, as fast as possible, 10 s; (2) calibration: 10 s at
# a per-connection delay aimed at half of it; (3) MINUTES segments of SOAK_SEGMENT seconds (60)
# at that delay, sampling RSS and fds of the vault in the middle of each. The first segment is the
# warm-up. Passes when: RSS at the end <= 1.10 x RSS after the warm-up; fds at the end <= fds
# after the warm-up + 8; every segment's p99 <= 2 x the median p99 of the segments + 5 ms;
# 0 non-2xx answers, 0 socket errors. Loopback only; bounded by MINUTES. Figures: target/reliability/soak.txt
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/scripts/reliability"
minutes="${1:-10}"
segment="${SOAK_SEGMENT:-60}"
conns="${SOAK_CONNECTIONS:-32}"
export PATH="$HOME/.cargo/bin:$PATH"
command -v wrk >/dev/null || { echo "[soak] installing wrk (Debian)" >&2; apt-get install -y -qq wrk >/dev/null; }
bin="${SOAK_BIN:-$root/target/release/vault}"
if [ -z "${SOAK_BIN:-}" ]; then (cd "$root" && cargo build --release -p vault --locked --quiet); fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")"
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT
out="$root/target/reliability/soak.txt"
mkdir -p "$(dirname "$out")"
: >"$out"
say() { echo "soak: $*" | tee -a "$out"; }

mkdir -p "$tmp/frame"
"$bin" init --data-dir "$tmp/data" --merchant Soak >"$tmp/init.json" 2>/dev/null
# shellcheck source=scripts/reliability/lib.sh
source "$here/lib.sh"
vault_serve "$bin" "$tmp/serve" --data-dir "$tmp/data" --frame-dir "$tmp/frame" \
  --rate-limit-key 1000000 --rate-limit-key-burst 1000000 --rate-limit-ip 1000000 --rate-limit-ip-burst 1000000
pid=$vault_pid
PK="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["publishable_key"])' "$tmp/init.json")"
export PK ORIGIN="$base"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
# RSS split: heap and stacks (anonymous), mapped files, shared memory (SQLite's WAL index), KiB.
rss_parts() { awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} /^RssShmem:/ {s=$2} END {print a, f, s}' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }
# run SECONDS DELAY_MS -> "rate p50_ms p99_ms non2xx socket_errors"
run() {
  DELAY_MS="$2" wrk -t1 -c"$conns" -d"$1s" --latency -s "$here/soak.lua" "$base/v1/tokens" >"$tmp/wrk.txt" 2>&1 || true
  python3 - "$tmp/wrk.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
def ms(v):
    n, u = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[u]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", t) or [0, 0])[1])
sock = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", t))
print(f"{rate:.0f} {p50:.2f} {p99:.2f} {non2xx} {sock}")
PY
}

say "vault $bin on $base, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (machine shared with other work)"
read -r max p50 p99 bad sock < <(run 10 0)
say "max tokenize rate: $max req/s (32 connections, p50 $p50 ms, p99 $p99 ms, non-2xx $bad, socket errors $sock)"
target=$(( max / 2 ))
delay=$(python3 -c "print(max(1, round($conns * 1000 / $target)))")
read -r rate _ _ _ _ < <(run 10 "$delay")
delay=$(python3 -c "print(max(1, round($delay * $rate / $target)))")
say "target $target req/s: per-connection delay $delay ms (calibration at the first guess: $rate req/s)"
say "segment rate_req_s p50_ms p99_ms non2xx socket_errors rss_kib fds anon_kib file_kib shmem_kib"
rows="$tmp/rows.txt"
: >"$rows"
for i in $(seq 1 "$minutes"); do
  # RSS and fds are sampled in the middle of the segment, with the load's connections open.
  ( sleep $((segment / 2)); echo "$(rss) $(fds) $(rss_parts)" >"$tmp/sample" ) &
  sampler=$!
  read -r rate p50 p99 bad sock < <(run "$segment" "$delay")
  wait "$sampler"
  line="$i $rate $p50 $p99 $bad $sock $(cat "$tmp/sample")"
  echo "$line" >>"$rows"
  say "$line"
done
python3 - "$rows" <<'PY' | tee -a "$out"
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
warm = rows[0]
end = rows[-1]
p99s = [r[3] for r in rows]
med = statistics.median(p99s)
errors = sum(r[4] + r[5] for r in rows)
growth = (end[6] - warm[6]) / warm[6] * 100
checks = [
    (growth <= 10.0, f"RSS {warm[6]/1024:.1f} MiB after warm-up -> {end[6]/1024:.1f} MiB at the end ({growth:+.1f} %, limit +10 %;"
     f" anonymous {warm[8]/1024:.1f} -> {end[8]/1024:.1f}, files {warm[9]/1024:.1f} -> {end[9]/1024:.1f}, shared {warm[10]/1024:.1f} -> {end[10]/1024:.1f} MiB)"),
    (end[7] <= warm[7] + 8, f"fds {int(warm[7])} after warm-up -> {int(end[7])} at the end (limit +8)"),
    (max(p99s) <= 2 * med + 5, f"p99 per segment {min(p99s):.2f}-{max(p99s):.2f} ms, median {med:.2f} ms (limit 2 x median + 5 ms)"),
    (errors == 0, f"{int(errors)} non-2xx answers and socket errors"),
]
ok = True
for passed, text in checks:
    print(("soak:   ok   " if passed else "soak:   FAIL ") + text)
    ok = ok and passed
print(f"soak: mean rate {statistics.mean(r[1] for r in rows):.0f} req/s over {len(rows)} segments")
sys.exit(0 if ok else 1)
PY
