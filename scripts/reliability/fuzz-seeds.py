#!/usr/bin/env python3
"""Writes the fuzz seed corpora (fuzz/corpus/<target>/) from the unit-test tables.

Run from the repository root: python3 scripts/reliability/fuzz-seeds.py
The seeds are committed; rerun this after changing a unit-test table. The corpora grow
during long fuzz runs only in a scratch copy (see RELIABILITY.md), never in the repo.
"""
import hashlib
import json
import pathlib
import re
import struct

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "fuzz" / "corpus"


def src(path):
    return (ROOT / path).read_text()


def write(target, items):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.iterdir():
        old.unlink()
    seen = set()
    for item in items:
        data = item.encode() if isinstance(item, str) else bytes(item)
        if data in seen:
            continue
        seen.add(data)
        (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
    print(f"{target}: {len(seen)} seeds")


card_sources = "".join(src(p) for p in ["crates/card/src/number.rs", "crates/card/src/brand.rs",
                                        "crates/card/src/card.rs", "crates/card/src/expiry.rs",
                                        "crates/card/src/cvc.rs", "crates/card/tests/properties.rs"])
numbers = sorted(set(re.findall(r'"([0-9][0-9 -]{11,24})"', card_sources)))
expiries = sorted(set(re.findall(r'"([0-9]{1,2} ?[/-]? ?[0-9]{0,4})"', src("crates/card/src/expiry.rs"))))
cvcs = ["123", "1234", "12", "12345", " 123 ", "12a"]
write("card_parse", numbers + expiries + cvcs + [
    "4242 4242 4242 4242\n12\n2030\n123",
    "378282246310005\n12\n30\n1234",
    "378282246310005\n12\n30\n123",
    "4111111111111111\n1\n2026\n",
])

# card::edit / reformat: check(Kind, "old", Op("x"), "expected") lines of format.rs.
kinds = {"Number": "N", "Expiry": "E", "Cvc(None)": "C", "Cvc(Some(Brand::Visa))": "V", "Cvc(Some(Brand::Amex))": "A"}
ops = {"DeleteBackward": "b", "DeleteForward": "f"}
fmt = []
for kind, old, op, arg in re.findall(
        r'check\((Number|Expiry|Cvc\([^,]*?\)\)?), "([^"]*)", (Insert|DeleteBackward|DeleteForward)(?:\("([^"]*)"\))?',
        src("crates/card/src/format.rs")):
    fmt.append(kinds[kind] + ("i" if op == "Insert" else ops[op]) + old + ("\n" + arg if op == "Insert" else ""))
fmt += ["Nr41111111|", "Nr411111|11", "Er1/30|", "Er122030|", "Cr12a3|", "Er12/2030", "Nr}4242", "Ni[4242]\n5555"]
write("card_format", fmt)

proto = src("crates/frame/src/protocol.rs")
write("frame_params", re.findall(r'"(#?v=[^"]*)"', proto) + [""])

ch = "abcdefghijklmnop0123"
fuzz_ch = "fuzzchannel0123456789"
msgs = []
for c in (ch, fuzz_ch):
    msgs += [
        {"v": 1, "channel": c, "type": "focus", "field": "cvc"},
        {"v": 1, "channel": c, "type": "clear", "extra": [1, 2]},
        {"v": 1, "channel": c, "type": "tokenize", "id": "t1"},
        {"v": 1, "channel": c, "type": "tokenize", "id": "x" * 65},
        {"v": 1, "channel": c, "type": "init", "locale": "fr",
         "style": {"base": {"color": "#333", "fontSize": "16px", "backgroundImage": "url(x)"},
                   "placeholder": {"color": "#aab7c4", "padding": "4px"}, "hover": {"color": "red"}},
         "placeholders": {"number": "Numéro", "postalCode": "ZIP"}, "fields": {"postalCode": True}},
        {"v": 2, "channel": c, "type": "clear"},
        {"v": "1", "channel": c, "type": "clear"},
        {"v": 1, "channel": c, "type": "init", "style": {"base": {"color": 7}}},
    ]
write("frame_message", [json.dumps(m, ensure_ascii=False) for m in msgs] + ['"clear"', "null"])

style = src("crates/frame/src/style.rs")
test_part = style[style.index("#[cfg(test)]"):]
values = re.findall(r'^\s*"((?:[^"\\]|\\.)*)",\s*$', test_part, re.M)
names = ["fontSize", "color", "WebkitFontSmoothing", "backgroundImage", "font size", "color:red"]
write("frame_style", [n + "\0" + json.loads('"' + v + '"') for n in names[:3] for v in values] +
      [n + "\0red" for n in names])

url_table = "".join(src(p) for p in ["crates/vault/src/api/mod.rs", "crates/vault/src/text.rs"] if (ROOT / p).exists())
urls = re.findall(r'\("(/v1/[^"]*)", (?:true|false)\)', url_table)
write("vault_url", urls + [b"P\x03" + bytes(range(40)), b"P\x06" + bytes(range(100, 160)) + b"abc\x01def"])

keys = src("crates/vault/src/keys.rs")
write("vault_keys", re.findall(r'parse_(?:origin|cidr)\("([^"]*)"\)', keys) +
      re.findall(r'classify\("([^"]*)"\)', keys) + ["pk_test_" + "a" * 32, "sk_live_" + "Z9" * 16,
                                                      "http://[::1]:8080", "10.0.0.0/33"])

env = []
for i, (version, mutation, pos, pt) in enumerate([
        (1, 0, 3, b"4242424242424242"), (1, 1, 20, b"4242424242424242"), (7, 2, 0, b"123"),
        (1, 3, 0, b""), (2, 4, 0, b"{\"pan\":\"4111111111111111\"}"), (1, 5, 0, b"x"),
        (0xFFFFFFFF, 6, 9, b"card"), (1, 7, 1, b"card"), (1, 0x21, 5, b"\x01\x00\x00\x00\x01")]):
    env.append(struct.pack(">IBH", version, mutation, pos) + pt)
write("vault_envelope", env + [bytes([1, 0, 0, 0, 1]) + bytes(40)])
