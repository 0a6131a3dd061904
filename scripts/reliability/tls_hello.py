#!/usr/bin/env python3
"""Sends one hand-built ClientHello and reports how the server answers.

For what Debian's OpenSSL 3 can no longer offer at all (SSLv3, RC4, 3DES, EXPORT suites):
  tls_hello.py HOST PORT VERSION SUITE[,SUITE...]
VERSION: ssl3 | tls1.0 | tls1.1 | tls1.2. SUITE: IANA code points in hex (0x000a).
Prints `accepted <suite>` (the server sent a ServerHello) or `refused <how>` (an alert, or
the connection closed without a ServerHello). Exit code 0 either way; 2 if no answer at all.
"""
import socket
import struct
import sys

VERSIONS = {"ssl3": 0x0300, "tls1.0": 0x0301, "tls1.1": 0x0302, "tls1.2": 0x0303}


def ext(kind, body):
    return struct.pack(">HH", kind, len(body)) + body


def client_hello(version, suites, host="localhost"):
    name = host.encode()
    sni = struct.pack(">BH", 0, len(name)) + name
    exts = ext(0x0000, struct.pack(">H", len(sni)) + sni)
    groups = [0x001d, 0x0017, 0x0018]  # x25519, secp256r1, secp384r1
    exts += ext(0x000a, struct.pack(">H", 2 * len(groups)) + b"".join(struct.pack(">H", g) for g in groups))
    exts += ext(0x000b, b"\x01\x00")  # ec_point_formats: uncompressed
    if version >= 0x0303:
        # ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256, ecdsa_secp384r1_sha384,
        # rsa_pss_rsae_sha384, rsa_pkcs1_sha384, rsa_pss_rsae_sha512, rsa_pkcs1_sha512
        algs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
        exts += ext(0x000d, struct.pack(">H", 2 * len(algs)) + b"".join(struct.pack(">H", a) for a in algs))
    exts += ext(0xff01, b"\x00")  # renegotiation_info (empty)
    body = struct.pack(">H", version) + bytes(range(32)) + b"\x00"
    body += struct.pack(">H", 2 * len(suites)) + b"".join(struct.pack(">H", s) for s in suites)
    body += b"\x01\x00" + struct.pack(">H", len(exts)) + exts
    handshake = b"\x01" + struct.pack(">I", len(body))[1:] + body
    record_version = 0x0300 if version == 0x0300 else 0x0301
    return struct.pack(">BHH", 0x16, record_version, len(handshake)) + handshake


def main():
    host, port, version, suites = sys.argv[1], int(sys.argv[2]), VERSIONS[sys.argv[3]], sys.argv[4]
    suites = [int(s, 16) for s in suites.split(",")]
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(client_hello(version, suites))
        data = b""
        try:
            while len(data) < 80:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout) as e:
            if not data:
                print(f"refused {type(e).__name__}")
                return 0
    if len(data) >= 6 and data[0] == 0x16 and data[5] == 0x02:
        # ServerHello: version(2) random(32) session_id(len+n) cipher_suite(2)
        sid_len = data[43] if len(data) > 43 else 0
        suite = data[44 + sid_len:46 + sid_len]
        print(f"accepted 0x{suite.hex()}" if len(suite) == 2 else "accepted")
    elif len(data) >= 7 and data[0] == 0x15:
        print(f"refused alert {data[5]}/{data[6]}")
    elif not data:
        print("refused closed")
    else:
        print(f"refused other {data[:8].hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
