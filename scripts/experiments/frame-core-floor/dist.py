#!/usr/bin/env python3
"""Makes a frame `dist/` that runs the JS-edge prototype, for the e2e bench
(`E2E_DIST_DIR=OUT cargo test -p e2e --test bench -- --ignored --nocapture`).

Usage: dist.py DIST OUT [BUILD]
  DIST   a `dist/` made by scripts/build-frame.sh (its page, sprite, locales, loader);
  OUT    the directory to write (replaced);
  BUILD  where measure.sh left its files (default: $TMPDIR/frame-core-floor).

The frame's glue becomes the bundle (the floor's glue with edge.js) and its `.wasm` the floor's,
under the same names, with the page's SRI hashes rewritten; the page's inline start-up script calls
the bundle's `boot(module)` instead of instantiating the glue and calling `boot()`. The vault
hashes inline scripts for its CSP when it serves the page, so the edited page passes it.
"""
import base64
import hashlib
import os
import pathlib
import shutil
import sys


def sri(path):
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


dist, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
build = pathlib.Path(sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.environ.get("TMPDIR", "/tmp"), "frame-core-floor"))
shutil.rmtree(out, ignore_errors=True)
shutil.copytree(dist, out)
glue = next(out.glob("frame-*.js"))
wasm = next(out.glob("frame-*_bg.wasm"))
page = (out / "index.html").read_text()
old = (sri(glue), sri(wasm))
shutil.copy(build / "bundle.js", glue)
shutil.copy(build / "core.wasm", wasm)
start = "await glue.default({ module_or_path: m });\nglue.boot();"
assert page.count(start) == 1, "the page's start-up script is not the one this script knows"
assert all(page.count(h) == 1 for h in old), "the page does not carry the files' SRI hashes"
page = page.replace(start, "await glue.boot(m);").replace(old[0], sri(glue)).replace(old[1], sri(wasm))
(out / "index.html").write_text(page)
print(f"{out}: {glue.name} = bundle.js, {wasm.name} = core.wasm")
