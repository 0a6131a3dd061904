#!/usr/bin/env bash
# Type-checks web/loader.d.ts and every JS/TS example in the loader docs (docs/loader.md,
# README.md) against it with tsc: each ```js / ```ts block, and each <script> body of each
# ```html block, becomes a module of its own. Names the examples use without defining them
# (the page's own elements and functions) are declared in docs/examples.d.ts.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tsc="$root/.tools/node_modules/.bin/tsc"
[ -x "$tsc" ] || { echo "missing $tsc: run scripts/setup.sh" >&2; exit 1; }
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

python3 - "$root" "$out" <<'PY'
import pathlib, re, sys
root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
count = 0
for doc in ["docs/loader.md", "README.md"]:
    text = (root / doc).read_text()
    for m in re.finditer(r"^```(js|ts|html)\n(.*?)^```", text, re.S | re.M):
        lang, body = m.group(1), m.group(2)
        line = text.count("\n", 0, m.start()) + 2
        bodies = [body] if lang != "html" else re.findall(r"<script[^>]*>(.*?)</script>", body, re.S)
        for b in bodies:
            if not b.strip():
                continue
            count += 1
            name = f"{pathlib.Path(doc).stem}-{line}-{count}.ts"
            # One module per example (top-level await allowed), its source line in the name.
            (out / name).write_text(b + "\nexport {};\n")
if count == 0:
    sys.exit("no examples found")
print(f"{count} examples")
PY

cp "$root/web/loader.d.ts" "$root/docs/examples.d.ts" "$out/"
cd "$out"
"$tsc" --noEmit --strict --target es2022 --module es2022 --moduleResolution bundler --lib es2022,dom \
  --useUnknownInCatchVariables false --skipLibCheck false ./*.ts
echo "examples type-check"
