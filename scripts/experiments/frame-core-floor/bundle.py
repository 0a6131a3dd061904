#!/usr/bin/env python3
"""Bundles the floor's wasm-bindgen glue and edge.js into one ES module (what a frame with a JS
edge would download as its one script): the glue's exports become the `c` object edge.js calls,
so terser can mangle every name but `boot`. Usage: bundle.py GLUE EDGE OUT"""
import re
import sys

glue, edge, out = (open(p).read() if i < 2 else p for i, p in enumerate(sys.argv[1:4]))
names = re.findall(r"^export function (\w+)\(", glue, flags=re.M)
assert names, "no exported functions in the glue"
# Renamed, so that no name of the glue can clash with one of edge.js.
glue = re.sub(r"^export function (\w+)\(", r"function __c_\1(", glue, flags=re.M)
glue = re.sub(r"^export \{ initSync, __wbg_init as default \};\n?", "", glue, flags=re.M)
line = "import init, * as c from './core.js';\n"
assert line in edge, "edge.js does not import the core as expected"
edge = edge.replace(line, "const init = __wbg_init;\nconst c = { " + ", ".join(f"{n}: __c_{n}" for n in names) + " };\n")
open(out, "w").write(glue + "\n" + edge)
