#!/usr/bin/env python3
"""Trunk post-build hook (Trunk.toml): shrinks the frame's wasm-bindgen output in the staging dir.

1. Renames the WASM's imports from the glue (`__wbg_get_556f1c9a5c587e8c`, 125 of them, each
   with 16 hex digits that no compressor can shrink) to short names (`_0`, `_1`, ...), in the
   WASM's import section and in the glue's import object alike. Every name must occur exactly
   once in the glue as an object key, or the build fails: nothing is renamed half-way.
2. Minifies the glue with terser (local names mangled, no comments or whitespace; property
   names, so the import keys of 1., and the module's exports kept).
3. Rewrites the SRI `integrity` of both files in index.html (Trunk computed it before this hook).

File names keep Trunk's hashes: the output is a pure function of Trunk's, so a name still
stands for one content. BENCHMARKS.md has what this saves on the wire.
"""

import base64
import hashlib
import pathlib
import re
import shutil
import subprocess
import sys


def leb(data, i):
    """Reads an unsigned LEB128 at i; returns (value, next index)."""
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def put_leb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def skip_limits(data, i):
    flags = data[i]
    i += 1
    _, i = leb(data, i)
    if flags & 1:
        _, i = leb(data, i)
    return i


def rename_imports(wasm, module, renames):
    """Returns wasm with the import section's field names of `module` mapped through renames()."""
    assert wasm[:8] == b"\0asm\x01\0\0\0", "not a wasm module"
    out = bytearray(wasm[:8])
    i = 8
    while i < len(wasm):
        section_id = wasm[i]
        size, body = leb(wasm, i + 1)
        end = body + size
        if section_id != 2:
            out += wasm[i:end]
            i = end
            continue
        count, j = leb(wasm, body)
        new = bytearray(put_leb(count))
        for _ in range(count):
            n, j = leb(wasm, j)
            mod = wasm[j : j + n]
            j += n
            n, j = leb(wasm, j)
            name = wasm[j : j + n].decode()
            j += n
            kind = wasm[j]
            start = j
            j += 1
            if kind == 0:  # function: type index
                _, j = leb(wasm, j)
            elif kind == 1:  # table: reftype, limits
                j = skip_limits(wasm, j + 1)
            elif kind == 2:  # memory: limits
                j = skip_limits(wasm, j)
            elif kind == 3:  # global: valtype, mutability
                j += 2
            elif kind == 4:  # tag: attribute, type index
                _, j = leb(wasm, j + 1)
            else:
                sys.exit(f"shrink-glue: unknown import kind {kind}")
            if mod.decode() == module:
                name = renames(name)
            encoded = name.encode()
            new += put_leb(len(mod)) + mod + put_leb(len(encoded)) + encoded + wasm[start:j]
        assert j == end, "import section not read to its end"
        out += bytes([2]) + put_leb(len(new)) + new
        i = end
    return bytes(out)


def sri(data):
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def main(stage):
    stage = pathlib.Path(stage)
    wasm_path = next(stage.glob("frame-*_bg.wasm"))
    glue_path = stage / wasm_path.name.replace("_bg.wasm", ".js")
    html_path = stage / "index.html"
    wasm, glue, html = wasm_path.read_bytes(), glue_path.read_text(), html_path.read_text()
    old_sri = {wasm_path.name: sri(wasm), glue_path.name: sri(glue_path.read_bytes())}

    # 1. Short import names, the same in both files.
    module = "./frame_bg.js"
    assert f'"{module}"' in glue, f"the glue does not import {module}"
    mapping = {}

    def rename(name):
        new = mapping.setdefault(name, f"_{len(mapping)}")
        return new

    wasm = rename_imports(wasm, module, rename)
    for old, new in mapping.items():
        pattern = re.compile(r"(?<![\w$])" + re.escape(old) + r"(?=\s*:)")
        found = len(pattern.findall(glue))
        if found != 1 or len(re.findall(r"(?<![\w$])" + re.escape(old) + r"(?![\w$])", glue)) != 1:
            sys.exit(f"shrink-glue: {old} occurs {found} times as a key in {glue_path.name}")
        if re.search(r"(?<![\w$])" + re.escape(new) + r"(?![\w$])", glue):
            sys.exit(f"shrink-glue: {new} is already a name in {glue_path.name}")
        glue = pattern.sub(new, glue)

    # 2. Minified by terser (pinned in scripts/setup.sh, on PATH from .tools/node_modules/.bin):
    # local names mangled, comments and whitespace dropped. Property names (the import keys
    # above, the WASM's exports) and the module's own exports are kept: terser does not mangle
    # properties, and `--module` keeps export names.
    terser = shutil.which("terser")
    if terser is None:
        sys.exit("shrink-glue: terser is not on PATH (scripts/setup.sh installs it in .tools)")
    result = subprocess.run(
        [terser, "--module", "--ecma", "2020", "--compress", "passes=2", "--mangle"],
        input=glue,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        sys.exit(f"shrink-glue: terser failed on {glue_path.name}: {result.stderr.strip()}")
    minified = result.stdout
    for name in ["export function boot", "as default", "as initSync", '"./frame_bg.js"']:
        if name not in minified:
            sys.exit(f"shrink-glue: {name} is missing from the minified glue")
    for new in mapping.values():
        if len(re.findall(r"(?<![\w$])" + re.escape(new) + r":", minified)) != 1:
            sys.exit(f"shrink-glue: the import key {new} is not in the minified glue once")
    glue = minified

    # 3. SRI in index.html.
    glue_bytes = glue.encode()
    new_sri = {wasm_path.name: sri(wasm), glue_path.name: sri(glue_bytes)}
    for name, old in old_sri.items():
        if html.count(old) != 1:
            sys.exit(f"shrink-glue: the SRI of {name} is not in index.html once")
        html = html.replace(old, new_sri[name])
    wasm_path.write_bytes(wasm)
    glue_path.write_bytes(glue_bytes)
    html_path.write_text(html)
    print(f"shrink-glue: {len(mapping)} imports renamed; {glue_path.name} {len(glue_bytes)} B")


if __name__ == "__main__":
    main(sys.argv[1])
