#!/usr/bin/env python3
"""Tokenize load for the fault scenarios (scripts/reliability/faults.sh).

  tokenize_load.py run BASE PK CERT OUT.jsonl --threads 4 --seconds 20 [--source 127.0.0.1]
      POSTs test cards to BASE/v1/tokens from THREADS keep-alive HTTPS connections for SECONDS,
      one JSON line per request to OUT.jsonl: {"t0", "t1", "status", "retry_after", "id"};
      status 0 = no answer (connection error or the 30 s client timeout).
  tokenize_load.py verify BASE SK CERT OUT.jsonl
      reads back every token acknowledged with 201 in OUT.jsonl (GET /v1/tokens/{id}, secret key);
      prints how many and exits 1 if any is missing.
  tokenize_load.py report OUT.jsonl PHASES.txt
      PHASES.txt: lines "unix_time name"; prints, per phase, the answers by status, how many
      503s carried Retry-After, and the p50/p99 latency; JSON on the last line.
"""

import http.client
import json
import ssl
import sys
import threading
import time

CARDS = ["4242424242424242", "5555555555554444", "378282246310005", "6011111111111117"]


def context(cert):
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False  # the development certificate names localhost and 127.0.0.1
    return ctx


def connect(host, port, ctx, source):
    return http.client.HTTPSConnection(host, port, context=ctx, timeout=30, source_address=(source, 0) if source else None)


def run(base, pk, cert, out, threads=4, seconds=20.0, source=None):
    host, port = base.removeprefix("https://").rsplit(":", 1)
    ctx = context(cert)
    origin = base
    lock = threading.Lock()
    sink = open(out, "a", buffering=1)
    deadline = time.time() + seconds

    def worker(n):
        conn = connect(host, int(port), ctx, source)
        i = 0
        while time.time() < deadline:
            card = CARDS[(n + i) % len(CARDS)]
            cvc = "1234" if card.startswith("3") else "123"
            body = json.dumps({"card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": cvc}})
            t0 = time.time()
            rec = {"t0": t0, "status": 0, "retry_after": None, "id": None}
            try:
                conn.request("POST", "/v1/tokens", body=body, headers={
                    "Authorization": f"Bearer {pk}", "Origin": origin, "Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                rec["status"] = r.status
                rec["retry_after"] = r.getheader("Retry-After")
                if r.status == 201:
                    rec["id"] = json.loads(data)["id"]
                elif r.status >= 500:
                    rec["code"] = json.loads(data or b"{}").get("error", {}).get("code")
                if (r.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = connect(host, int(port), ctx, source)
            except Exception as e:  # noqa: BLE001 - any failure is a data point
                rec["error"] = type(e).__name__
                conn.close()
                conn = connect(host, int(port), ctx, source)
                time.sleep(0.05)
            rec["t1"] = time.time()
            with lock:
                sink.write(json.dumps(rec) + "\n")
            i += 1
        conn.close()

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    sink.close()


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def verify(base, sk, cert, out):
    host, port = base.removeprefix("https://").rsplit(":", 1)
    conn = connect(host, int(port), context(cert), None)
    ids = [r["id"] for r in records(out) if r["status"] == 201]
    missing = []
    for tid in ids:
        for _ in range(20):
            conn.request("GET", f"/v1/tokens/{tid}", headers={"Authorization": f"Bearer {sk}"})
            r = conn.getresponse()
            r.read()
            if r.status not in (429, 503):
                break
            time.sleep(float(r.getheader("Retry-After") or 1))
        if r.status != 200:
            missing.append((tid[:8] + "...", r.status))
    print(f"verify: {len(ids)} acknowledged tokens, {len(ids) - len(missing)} read back, {len(missing)} missing")
    if missing:
        print(f"verify: FAILED: missing {missing[:10]}")
        sys.exit(1)


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p))] * 1000, 1)


def report(out, phases_path):
    recs = records(out)
    phases = []
    with open(phases_path) as f:
        for line in f:
            t, name = line.split(maxsplit=1)
            phases.append((float(t), name.strip()))
    summary = {}
    for i, (start, name) in enumerate(phases):
        end = phases[i + 1][0] if i + 1 < len(phases) else float("inf")
        # A request belongs to the phase in which it was answered.
        rs = [r for r in recs if start <= r["t1"] < end]
        by = {}
        for r in rs:
            by[str(r["status"])] = by.get(str(r["status"]), 0) + 1
        s503 = [r for r in rs if r["status"] == 503]
        lat = [r["t1"] - r["t0"] for r in rs if r["status"] == 201]
        all_lat = [r["t1"] - r["t0"] for r in rs]
        summary[name] = {
            "answers": by,
            "503_with_retry_after": sum(1 for r in s503 if r.get("retry_after")),
            "p50_ms_201": pct(lat, 0.5), "p99_ms_201": pct(lat, 0.99), "max_ms_any": pct(all_lat, 1.0),
            "codes_5xx": sorted({r.get("code") or "" for r in rs if r["status"] >= 500}),
            "first_201_after_start_s": round(min((r["t1"] for r in rs if r["status"] == 201), default=start) - start, 2)
            if any(r["status"] == 201 for r in rs) else None,
        }
        print(f"  {name:<22} {json.dumps(summary[name])}")
    print(json.dumps(summary))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "run":
        args = sys.argv[2:]
        opts = {"--threads": 4, "--seconds": 20.0, "--source": None}
        pos = []
        i = 0
        while i < len(args):
            if args[i] in opts:
                opts[args[i]] = args[i + 1]
                i += 2
            else:
                pos.append(args[i])
                i += 1
        run(*pos, threads=int(opts["--threads"]), seconds=float(opts["--seconds"]), source=opts["--source"])
    elif cmd == "verify":
        verify(*sys.argv[2:6])
    elif cmd == "report":
        report(*sys.argv[2:4])
    else:
        sys.exit("usage: tokenize_load.py run|verify|report ...")
