// The package's declarations compile under `tsc --strict`, and so does every TypeScript/JS
// example in README.md and docs/js-package.md, imported as a merchant would
// ('@altafinex/js', '@altafinex/js/react'; 'react' from a small stub: no @types/react here).
// ```tsx examples are compiled as JSX (`jsx: react-jsx`), their props checked against the
// components' declared props.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pkg, repo, tools } from './helpers.mjs';

test('declarations and documented examples type-check', () => {
  const dir = mkdtempSync(join(tmpdir(), 'altafinex-types-'));
  try {
    let n = 0;
    for (const doc of [join(pkg, 'README.md'), join(repo, 'docs', 'js-package.md')]) {
      const text = readFileSync(doc, 'utf8');
      for (const m of text.matchAll(/^```(ts|js|tsx)\n([\s\S]*?)^```/gm)) {
        writeFileSync(join(dir, `example-${++n}.${m[1] === 'tsx' ? 'tsx' : 'ts'}`), m[2] + '\nexport {};\n');
      }
    }
    assert.ok(n >= 3, `found ${n} examples`);
    cpSync(join(pkg, 'test', 'react-stub.d.ts'), join(dir, 'react-stub.d.ts'));
    cpSync(join(repo, 'docs', 'examples.d.ts'), join(dir, 'page.d.ts'));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        strict: true, noEmit: true, target: 'es2022', module: 'es2022', moduleResolution: 'bundler', jsx: 'react-jsx',
        lib: ['es2022', 'dom'], skipLibCheck: false, useUnknownInCatchVariables: false,
        paths: {
          '@altafinex/js': [join(pkg, 'dist', 'index.d.ts')],
          '@altafinex/js/react': [join(pkg, 'dist', 'react.d.ts')],
          '@altafinex/js/react-binding': [join(pkg, 'dist', 'react-binding.d.ts')],
        },
      },
      include: ['*.ts', '*.tsx'],
    }));
    const r = spawnSync(join(tools, '.bin', 'tsc'), ['-p', dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, `tsc:\n${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
