#!/usr/bin/env python3
"""Scans runtime outputs for the test card numbers (see leak-scan.sh for what is scanned).

  leak_scan.py pans   ROOT                 print how many test PANs the sources hold
  leak_scan.py scan   ROOT PATH...         scan files/dirs; exit 1 on any hit
  leak_scan.py plant  DIR                  write planted leaks into DIR (self-test)

Needles, for every 13-19 digit Luhn-valid number in the test sources (not all one digit):
the number as digits, with spaces/dashes between digits, in UTF-16LE, and its last 8 digits
(as digits, and UTF-16LE; only where no other digit touches them) unless all one digit. A hit prints the file, the byte
offset and the masked number (first 6 and last 4 digits), never the number itself.
Compiled code (ELF, WebAssembly) is skipped: test binaries hold the numbers as constants.
"""
import os
import re
import sys

SOURCES = ["crates", "tests", "static", "web", "docs"]
SOURCE_EXT = (".rs", ".js", ".ts", ".html", ".md", ".json")
DIGIT_RUN = re.compile(rb"[0-9](?:[ -]?[0-9]){12,22}")
SEP_RUN = re.compile(rb"[0-9][0-9 \-]{11,60}[0-9]")
MAX_FILE = 512 * 1024 * 1024


def luhn(digits):
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def test_pans(root):
    pans = set()
    for top in SOURCES:
        for dirpath, dirnames, files in os.walk(os.path.join(root, top)):
            dirnames[:] = [d for d in dirnames if d not in ("target", "node_modules")]
            for name in files:
                if not name.endswith(SOURCE_EXT):
                    continue
                with open(os.path.join(dirpath, name), "rb") as f:
                    data = f.read()
                for m in DIGIT_RUN.finditer(data):
                    digits = re.sub(rb"[ -]", b"", m.group()).decode()
                    if 13 <= len(digits) <= 19 and luhn(digits) and len(set(digits)) > 1:
                        pans.add(digits)
    return sorted(pans)


def mask(pan):
    return f"{pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]}"


def needles(pans):
    out = []  # (bytes, label, unit): unit = char width when the needle must stand alone
    for i, pan in enumerate(pans):
        label = f"test PAN #{i} {mask(pan)}"
        out.append((pan.encode(), label, 0))
        out.append((pan.encode("utf-16-le"), label + " (UTF-16)", 0))
        last8 = pan[-8:]
        if len(set(last8)) > 1:
            # Only as a number of its own: inside a longer digit run ("req_...0000000005",
            # timestamps) eight digits are noise, and a whole PAN is caught above.
            out.append((last8.encode(), f"last 8 digits of {label}", 1))
            out.append((last8.encode("utf-16-le"), f"last 8 digits of {label} (UTF-16)", 2))
    return out


def stands_alone(data, at, length, unit):
    """No ASCII digit (in `unit`-byte characters) right before or after data[at:at+length]."""
    if unit == 0:
        return True
    before = data[at - unit:at] if at >= unit else b""
    after = data[at + length:at + length + unit]
    is_digit = lambda c: len(c) == unit and 48 <= c[0] <= 57 and (unit == 1 or c[1] == 0)
    return not is_digit(before) and not is_digit(after)


# Compiled code (ELF executables and libraries, WebAssembly modules): test binaries embed the
# test numbers as constants, as the sources do; e.g. wasm-bindgen-test-runner's temp dirs.
COMPILED = (b"\x7fELF", b"\x00asm")


def scan_file(path, found, pans_set, needle_list, report, skipped):
    try:
        size = os.path.getsize(path)
        if size == 0 or size > MAX_FILE:
            return
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return
    if data.startswith(COMPILED):
        skipped.append(path)
        return
    for needle, label, unit in needle_list:
        start = 0
        while True:
            at = data.find(needle, start)
            if at < 0:
                break
            if stands_alone(data, at, len(needle), unit):
                report(path, at, label)
                found.append(1)
            start = at + 1
    # Formatted with separators ("4242 4242 4242 4242", "4242-4242-..."): digit runs with
    # spaces/dashes whose digits contain a test PAN.
    for m in SEP_RUN.finditer(data):
        run = m.group()
        if b" " not in run and b"-" not in run:
            continue  # plain digits: found above
        digits = re.sub(rb"[ -]", b"", run).decode()
        for pan in pans_set:
            if pan in digits:
                report(path, m.start(), f"test PAN {mask(pan)} with separators")
                found.append(1)


def scan(root, paths):
    pans = test_pans(root)
    if not pans:
        print("leak-scan: found no test PANs in the sources: refusing to report a clean scan")
        return 2
    needle_list = needles(pans)
    found = []
    skipped = []
    files = 0
    total = 0
    hits = {}

    def report(path, at, label):
        key = (path, label)
        hits[key] = hits.get(key, 0) + 1
        if hits[key] <= 3:
            print(f"LEAK: {path} @ byte {at}: {label}")
        elif hits[key] == 4:
            print(f"LEAK: {path}: more hits of {label} not shown")

    for p in paths:
        if os.path.isfile(p):
            walk = [(os.path.dirname(p), [], [os.path.basename(p)])]
        else:
            walk = os.walk(p)
        for dirpath, _, names in walk:
            for name in names:
                full = os.path.join(dirpath, name)
                if os.path.islink(full) or not os.path.isfile(full):
                    continue
                files += 1
                total += os.path.getsize(full)
                scan_file(full, found, set(pans), needle_list, report, skipped)
    print(f"leak-scan: {len(pans)} test PANs, {len(needle_list)} needles; scanned {files} files, "
          f"{total / 1e6:.1f} MB ({len(skipped)} compiled files skipped); {len(found)} hits")
    return 1 if found else 0


def plant(d, root):
    pans = test_pans(root)
    pan = pans[len(pans) // 2]
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "planted.log"), "w") as f:
        f.write(f'{{"level":"info","msg":"request","body":"{{\\"number\\":\\"{pan}\\"}}"}}\n')
    with open(os.path.join(d, "planted-spaced.log"), "w") as f:
        f.write("card " + " ".join(pan[i:i + 4] for i in range(0, len(pan), 4)) + "\n")
    with open(os.path.join(d, "planted-utf16.ldb"), "wb") as f:
        f.write(b"\x00\x01" + pan.encode("utf-16-le") + b"\x00")
    with open(os.path.join(d, "planted-last8.db-wal"), "wb") as f:
        f.write(b"\x00" * 100 + b"last8=" + pan[-8:].encode() + b"\x00" * 100)
    return 4  # files planted, one hit or more each


def main():
    cmd, root = sys.argv[1], sys.argv[2]
    if cmd == "pans":
        print(len(test_pans(root)))
        return 0
    if cmd == "scan":
        return scan(root, sys.argv[3:])
    if cmd == "plant":
        plant(sys.argv[3], root)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
