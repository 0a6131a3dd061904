#!/usr/bin/env python3
"""Slowloris against a running vault (scripts/reliability/faults.sh slowloris).

  slowloris.py BASE CERT --slow 300 --seconds 25 --per-client-cap 100

1. Baseline: a normal client (source address 127.0.0.2) makes 40 requests, each on a new TLS
   connection (GET /healthz), and notes the latency.
2. Attack: SLOW connections from 127.0.0.1 each complete the TLS handshake, send a request line
   and then one header byte every 0.5 s, never finishing the head. Meanwhile the normal client
   makes its 40 requests again.
Passes when: exactly PER_CLIENT_CAP slow connections got through the handshake and the rest were
shed (closed before a handshake); every slow connection that got through was closed by the
vault within the header timeout (10 s) plus 3 s although it kept sending; the normal client got
every answer, with p99 at most 2 x its baseline p99 + 50 ms. Loopback traffic only; bounded.
"""

import json
import select
import socket
import ssl
import sys
import threading
import time


def ctx_for(cert):
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    return ctx


def normal_requests(host, port, ctx, n=40):
    lat, errors = [], 0
    for _ in range(n):
        t0 = time.time()
        try:
            raw = socket.create_connection((host, port), timeout=10, source_address=("127.0.0.2", 0))
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            if not data.startswith(b"HTTP/1.1 200"):
                errors += 1
            else:
                lat.append(time.time() - t0)
        except OSError:
            errors += 1
        time.sleep(0.05)
    return lat, errors


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("inf")


def main():
    base, cert = sys.argv[1], sys.argv[2]
    opts = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    slow = int(opts.get("--slow", 300))
    seconds = float(opts.get("--seconds", 25))
    cap = int(opts.get("--per-client-cap", 100))
    header_timeout = float(opts.get("--header-timeout", 10))
    host, port = base.removeprefix("https://").rsplit(":", 1)
    port = int(port)
    ctx = ctx_for(cert)

    base_lat, base_err = normal_requests(host, port, ctx)
    print(f"slowloris: baseline normal client: {len(base_lat)} answers, {base_err} errors, "
          f"p50 {pct(base_lat, .5)*1000:.1f} ms, p99 {pct(base_lat, .99)*1000:.1f} ms")

    results = []
    lock = threading.Lock()
    deadline = time.time() + seconds

    def attacker(i):
        rec = {"handshake": False, "held_s": None, "closed_by_server": False}
        try:
            raw = socket.create_connection((host, port), timeout=10, source_address=("127.0.0.1", 0))
        except OSError:
            with lock:
                results.append(rec)
            return
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            rec["handshake"] = True
        except (OSError, ssl.SSLError):
            raw.close()
            with lock:
                results.append(rec)
            return
        t0 = time.time()
        try:
            s.sendall(b"POST /v1/tokens HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            while time.time() < deadline:
                r, _, _ = select.select([s], [], [], 0.5)
                if r:
                    s.recv(4096)  # an answer or end of stream: either way the vault ended it
                    rec["closed_by_server"] = True
                    break
                s.sendall(b"a")
        except (OSError, ssl.SSLError):
            rec["closed_by_server"] = True
        rec["held_s"] = time.time() - t0
        s.close()
        with lock:
            results.append(rec)

    threads = []
    for i in range(slow):
        t = threading.Thread(target=attacker, args=(i,), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(0.005)
    time.sleep(1.0)
    att_lat, att_err = normal_requests(host, port, ctx)
    for t in threads:
        t.join(timeout=seconds + 15)

    got_through = [r for r in results if r["handshake"]]
    shed = [r for r in results if not r["handshake"]]
    cut = [r for r in got_through if r["closed_by_server"]]
    longest = max((r["held_s"] for r in got_through), default=0)
    summary = {
        "slow_connections": slow, "got_through": len(got_through), "shed": len(shed),
        "cut_by_header_timeout": len(cut), "longest_held_s": round(longest, 2),
        "normal_baseline_p50_ms": round(pct(base_lat, .5) * 1000, 1), "normal_baseline_p99_ms": round(pct(base_lat, .99) * 1000, 1),
        "normal_under_attack_p50_ms": round(pct(att_lat, .5) * 1000, 1), "normal_under_attack_p99_ms": round(pct(att_lat, .99) * 1000, 1),
        "normal_errors": base_err + att_err,
    }
    print(f"slowloris: under attack normal client: {len(att_lat)} answers, {att_err} errors, "
          f"p50 {pct(att_lat, .5)*1000:.1f} ms, p99 {pct(att_lat, .99)*1000:.1f} ms")
    checks = [
        (len(got_through) == cap and len(shed) == slow - cap,
         f"{len(got_through)} slow connections got through (cap {cap}), {len(shed)} shed"),
        (len(cut) == len(got_through) and longest <= header_timeout + 3,
         f"{len(cut)}/{len(got_through)} cut off by the vault while still sending, longest held {longest:.1f} s (header timeout {header_timeout:.0f} s)"),
        (att_err == 0 and base_err == 0, f"normal client errors: {base_err} before, {att_err} during"),
        (pct(att_lat, .99) <= 2 * pct(base_lat, .99) + 0.05,
         f"normal client p99 {pct(att_lat, .99)*1000:.1f} ms under attack vs {pct(base_lat, .99)*1000:.1f} ms before (limit 2x + 50 ms)"),
    ]
    ok = True
    for passed, text in checks:
        print(("slowloris:   ok   " if passed else "slowloris:   FAIL ") + text)
        ok = ok and passed
    print(json.dumps(summary))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
