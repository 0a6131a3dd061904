// Builds dist/ from src/ and types/ (no dependencies, a few milliseconds):
// - the ES modules as they are (index.js, react-binding.js, react.js);
// - altafinex.global.js, the script-tag build: index.js as a classic script defining
//   `window.AltafinexJS = { loadAltafinex, createCard, MANIFEST_PATH }`;
// - the declarations, with the loader's own web/loader.d.ts copied in as loader.d.ts.
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);

for (const f of readdirSync(join(root, 'src'))) cpSync(join(root, 'src', f), join(dist, f));
for (const f of readdirSync(join(root, 'types'))) cpSync(join(root, 'types', f), join(dist, f));
cpSync(join(root, '..', 'loader.d.ts'), join(dist, 'loader.d.ts'));

const esm = readFileSync(join(root, 'src', 'index.js'), 'utf8');
const exported = [...esm.matchAll(/^export (?:async )?(?:function|const) ([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]);
const body = esm.replace(/^export (async function|function|const) /gm, '$1 ');
if (/^\s*(import|export)\b/m.test(body)) throw new Error('src/index.js: an import or export the script-tag build cannot express');
writeFileSync(
  join(dist, 'altafinex.global.js'),
  `/*! @altafinex/js script-tag build: window.AltafinexJS */\n(function (g) {\n'use strict';\n${body}\n` +
    `g.AltafinexJS = { ${exported.join(', ')} };\n})(typeof window !== 'undefined' ? window : globalThis);\n`,
);
console.log(`built ${readdirSync(dist).length} files into dist/ (exports: ${exported.join(', ')})`);
