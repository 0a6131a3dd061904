#!/usr/bin/env python3
"""Crash check: every token id in a file must read back (GET /v1/tokens/{id} → 200).

Usage: readback.py BASE_URL CA_CERT SECRET_KEY IDS_FILE
"""
import http.client
import ssl
import sys
from urllib.parse import urlparse

base, ca, sk, ids_file = sys.argv[1:5]
url = urlparse(base)
ctx = ssl.create_default_context(cafile=ca)
ids = sorted({line.strip() for line in open(ids_file) if line.strip()})
conn = None
missing = []
for i, tok in enumerate(ids):
    for attempt in range(3):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=10)
            conn.request("GET", f"/v1/tokens/{tok}", headers={"Authorization": f"Bearer {sk}"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                missing.append((tok, resp.status))
            break
        except (OSError, http.client.HTTPException):
            conn = None
print(f"checked={len(ids)} missing={len(missing)}")
for tok, status in missing[:20]:
    print(f"  {tok}: HTTP {status}")
sys.exit(1 if missing else 0)
