#!/usr/bin/env python3
"""Webhook delivery lag: sets up a payments key, a token and a webhook endpoint at a local
receiver, then (while wrk loads the vault) makes one payment every INTERVAL seconds and
measures the time from its 201 answer (the payment and its event are committed) to the
arrival of its payment.succeeded delivery. Prints p50/p99.

Usage: lag.py BASE_URL CA_CERT ADMIN_KEY PK ORIGIN OUT_ENV DURATION_S
Writes PAY_KEY and TOKEN to OUT_ENV (for wrk) before measuring; measuring starts when the
file LAG_GO exists next to OUT_ENV.
"""
import http.client
import http.server
import json
import os
import ssl
import sys
import threading
import time
from urllib.parse import urlparse

base, ca, admin, pk, origin, out_env, duration = sys.argv[1:8]
url = urlparse(base)
ctx = ssl.create_default_context(cafile=ca)
arrived = {}
lock = threading.Lock()


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        now = time.monotonic()
        ev = json.loads(body)
        with lock:
            arrived.setdefault(ev["data"]["object"]["id"], now)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=server.serve_forever, daemon=True).start()


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
            {"url": f"http://127.0.0.1:{server.server_address[1]}/hook", "enabled_events": ["payment.succeeded"]})
assert s == 201, s
with open(out_env, "w") as f:
    f.write(f"PAY_KEY={pay_key}\nTOKEN={token}\n")
go = os.path.join(os.path.dirname(out_env), "LAG_GO")
while not os.path.exists(go):
    time.sleep(0.05)
sent = {}
end = time.monotonic() + float(duration)
n = 0
while time.monotonic() < end:
    n += 1
    s, p = call("POST", "/v1/payments", pay_key, {"amount": 100, "currency": "usd", "token": token},
                {"Idempotency-Key": f"lag-{os.getpid()}-{n}"})
    if s == 201:
        sent[p["id"]] = time.monotonic()
    time.sleep(0.1)
time.sleep(3)
lags = sorted((arrived[i] - t0) * 1000 for i, t0 in sent.items() if i in arrived)
missing = len(sent) - len(lags)
if not lags:
    print("lag: no deliveries")
    sys.exit(1)
p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
print(f"webhook delivery lag over {len(lags)} payments: p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms, "
      f"max {lags[-1]:.0f} ms, undelivered after 3 s: {missing}")
