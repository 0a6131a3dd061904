#!/usr/bin/env python3
"""Trunk post-build hook: gives brands.svg a content-hashed name.

Trunk copies `static/frame/brands.svg` as it is (`rel="copy-file"` does not hash), so the vault
could not cache it for long: a new icon set under the same name would meet year-old copies.
This hook renames it `brands-<16 hex of its SHA-256>.svg`, the shape the vault serves with
`Cache-Control: public, max-age=31536000, immutable` (`content_hashed` in
crates/vault/src/api/frame.rs), and writes the new name into index.html's
`data-icons="brands.svg"`, where the frame reads it (crates/frame/src/dom.rs). It refuses (and
the build fails) when the file or the attribute is not found exactly once.

Usage: hash-sprite.py STAGING_DIR
"""
import hashlib
import pathlib
import re
import sys

NAME = "brands.svg"
# Quoted or not: Trunk's HTML minifier may drop the quotes.
ATTRIBUTE = re.compile(r'data-icons=("?)brands\.svg\1(?=[\s>/])')


def main() -> int:
    staging = pathlib.Path(sys.argv[1])
    sprite = staging / NAME
    index = staging / "index.html"
    if not sprite.is_file():
        print(f"hash-sprite: {sprite} is missing", file=sys.stderr)
        return 1
    html = index.read_text(encoding="utf-8")
    if len(ATTRIBUTE.findall(html)) != 1:
        print(f"hash-sprite: data-icons=brands.svg must occur once in {index}", file=sys.stderr)
        return 1
    data = sprite.read_bytes()
    hashed = f"brands-{hashlib.sha256(data).hexdigest()[:16]}.svg"
    (staging / hashed).write_bytes(data)
    sprite.unlink()
    index.write_text(ATTRIBUTE.sub(f'data-icons="{hashed}"', html), encoding="utf-8")
    print(f"hash-sprite: {NAME} -> {hashed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
