#!/usr/bin/env python3
"""Webhook delivery lag: sets up a payments key, a token and a webhook endpoint at the bench's
receiver (`examples/webhook_sink.rs`, which records when each probe payment's delivery
arrives), then (while wrk loads the vault) makes one payment of 100 minor units every 0.1 s and
measures the time from its 201 answer (the payment and its event are committed) to the arrival
of its payment.succeeded delivery. Both sides read the same wall clock. Prints p50/p99.

Usage: lag.py BASE_URL CA_CERT ADMIN_KEY PK ORIGIN OUT_ENV DURATION_S SINK_URL ARRIVALS_FILE
Writes PAY_KEY and TOKEN to OUT_ENV (for wrk) before measuring; measuring starts when the
file LAG_GO exists next to OUT_ENV.
"""
import http.client
import json
import os
import ssl
import sys
import time
from urllib.parse import urlparse

base, ca, admin, pk, origin, out_env, duration, sink_url, arrivals_file = sys.argv[1:10]
url = urlparse(base)
ctx = ssl.create_default_context(cafile=ca)


def call(method, path, key, body=None, headers=None):
    c = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=30)
    h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", **(headers or {})}
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = json.loads(r.read() or b"{}")
    c.close()
    return r.status, data


_, k = call("POST", "/v1/keys", admin, {"kind": "secret", "role": "payments"})
pay_key = k["secret"]
_, t = call("POST", "/v1/tokens", pk, {"card": {"number": "4242424242424242", "exp_month": 12,
                                                 "exp_year": 2030, "cvc": "123"}}, {"Origin": origin})
token = t["id"]
s, _ = call("POST", "/v1/webhook_endpoints", admin,
            {"url": sink_url, "enabled_events": ["payment.succeeded"]})
assert s == 201, s
with open(out_env, "w") as f:
    f.write(f"PAY_KEY={pay_key}\nTOKEN={token}\n")
go = os.path.join(os.path.dirname(out_env), "LAG_GO")
while not os.path.exists(go):
    time.sleep(0.05)
sent = {}
end = time.time() + float(duration)
n = 0
while time.time() < end:
    n += 1
    s, p = call("POST", "/v1/payments", pay_key, {"amount": 100, "currency": "usd", "token": token},
                {"Idempotency-Key": f"lag-{os.getpid()}-{n}"})
    if s == 201:
        sent[p["id"]] = time.time()
    time.sleep(0.1)


def arrived():
    out = {}
    with open(arrivals_file) as f:
        for line in f:
            pid, at = line.split()
            out.setdefault(pid, int(at) / 1000.0)
    return out


# Up to 30 s more for the backlog the load left to drain.
deadline = time.time() + 30
while time.time() < deadline and len(set(arrived()) & set(sent)) < len(sent):
    time.sleep(0.2)
got = arrived()
lags = sorted((got[i] - t0) * 1000 for i, t0 in sent.items() if i in got)
missing = len(sent) - len(lags)
if not lags:
    print("lag: no deliveries")
    sys.exit(1)
p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
print(f"webhook delivery lag over {len(lags)} payments: p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, "
      f"max {lags[-1]:.0f} ms, undelivered after the run + 30 s: {missing}")
