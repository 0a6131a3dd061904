// loadAltafinex: SSR-safe, one load per page, SRI from the manifest or a pin, retries after failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import vm from 'node:vm';
import { PIN, VAULT, fakeWindow, freshLoader, pkg, withWindow } from './helpers.mjs';

const ALTAFINEX = { card() {}, version: '1' };

test('importing and calling on the server touches no window and resolves null', async () => {
  assert.equal(typeof globalThis.window, 'undefined');
  const { loadAltafinex, loadedAltafinex, createCard } = await freshLoader();
  assert.equal(loadedAltafinex(), null);
  assert.equal(await loadAltafinex({ vaultOrigin: VAULT }), null);
  assert.equal(await loadAltafinex(), null, 'no options on the server: still null, no throw');
  assert.equal(await createCard({ vaultOrigin: VAULT }, { key: 'pk_test_x' }), null);
});

test('concurrent calls share one promise and one script, pinned with the manifest SRI', async () => {
  const win = fakeWindow({ manifest: { version: 'abcdefghijklmnop', ...PIN, evergreen: '/v1/loader.js' } });
  await withWindow(win, async () => {
    const { loadAltafinex } = await freshLoader();
    const a = loadAltafinex({ vaultOrigin: VAULT + '/ignored/path' });
    const b = loadAltafinex({ vaultOrigin: VAULT });
    assert.equal(a, b);
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(win.fetched.map((f) => f.url), [VAULT + '/v1/loader-manifest.json']);
    assert.equal(win.scripts.length, 1);
    const s = win.scripts[0];
    assert.equal(s.src, VAULT + PIN.url);
    assert.equal(s.integrity, PIN.integrity);
    assert.equal(s.crossOrigin, 'anonymous');
    win.Altafinex = ALTAFINEX;
    s.fire('load');
    assert.equal(await a, ALTAFINEX);
    assert.equal(await b, ALTAFINEX);
    assert.equal(s.listenerCount(), 0, 'no listener left on the script');
    assert.equal(await loadAltafinex({ vaultOrigin: VAULT }), ALTAFINEX);
    assert.equal(win.scripts.length, 1, 'never a second script');
    await assert.rejects(loadAltafinex({ vaultOrigin: 'https://other.example' }), TypeError);
  });
});

test('a pinned loader is used as given, without reading the manifest', async () => {
  const win = fakeWindow();
  await withWindow(win, async () => {
    const { loadAltafinex } = await freshLoader();
    const p = loadAltafinex({ vaultOrigin: VAULT, loader: PIN });
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(win.fetched.length, 0);
    assert.equal(win.scripts[0].src, VAULT + PIN.url);
    win.Altafinex = ALTAFINEX;
    win.scripts[0].fire('load');
    assert.equal(await p, ALTAFINEX);
  });
  await withWindow(fakeWindow(), async () => {
    const { loadAltafinex } = await freshLoader();
    await assert.rejects(loadAltafinex({ vaultOrigin: VAULT, loader: { url: '/v1/loader.js', integrity: PIN.integrity } }), {
      code: 'loader_manifest_invalid',
    });
    await assert.rejects(loadAltafinex({ vaultOrigin: 'javascript:alert(1)' }), TypeError);
    await assert.rejects(loadAltafinex({}), TypeError);
  });
});

test('the evergreen loader carries no integrity', async () => {
  const win = fakeWindow();
  await withWindow(win, async () => {
    const { loadAltafinex } = await freshLoader();
    loadAltafinex({ vaultOrigin: VAULT, loader: 'evergreen' });
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(win.scripts[0].src, VAULT + '/v1/loader.js');
    assert.equal(win.scripts[0].integrity, undefined);
  });
});

test('failures reject with a code and the next call tries again', async () => {
  const win = fakeWindow({ manifest: { url: '/v1/loader.js', integrity: 'sha256-x' } });
  await withWindow(win, async () => {
    const { loadAltafinex } = await freshLoader();
    await assert.rejects(loadAltafinex({ vaultOrigin: VAULT }), { code: 'loader_manifest_invalid' });
    win.fetch = fakeWindow({ fetchFails: true }).fetch;
    await assert.rejects(loadAltafinex({ vaultOrigin: VAULT }), { code: 'loader_manifest_unavailable' });
    win.fetch = fakeWindow({ manifest: PIN }).fetch;
    const failing = loadAltafinex({ vaultOrigin: VAULT });
    await new Promise((r) => setTimeout(r, 0));
    win.scripts[0].fire('error');
    await assert.rejects(failing, { code: 'loader_failed' });
    assert.equal(win.scripts.length, 0, 'the failed script is removed');
    const retry = loadAltafinex({ vaultOrigin: VAULT });
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(win.scripts.length, 1);
    win.Altafinex = ALTAFINEX;
    win.scripts[0].fire('load');
    assert.equal(await retry, ALTAFINEX);
  });
});

test('a loader already on the page is used as it is', async () => {
  const win = fakeWindow();
  win.Altafinex = ALTAFINEX;
  await withWindow(win, async () => {
    const { loadAltafinex } = await freshLoader();
    assert.equal(await loadAltafinex({ vaultOrigin: VAULT }), ALTAFINEX);
    assert.equal(win.scripts.length + win.fetched.length, 0);
    const { loadedAltafinex } = await freshLoader();
    assert.equal(loadedAltafinex(), ALTAFINEX);
  });
});

test('the script-tag build defines window.AltafinexJS', async () => {
  const code = readFileSync(join(pkg, 'dist', 'altafinex.global.js'), 'utf8');
  const win = fakeWindow();
  win.Altafinex = ALTAFINEX;
  const context = { window: win, URL, Promise, Error, TypeError, setTimeout };
  vm.runInNewContext(code, context);
  assert.deepEqual(Object.keys(win.AltafinexJS).sort(), ['MANIFEST_PATH', 'createCard', 'loadAltafinex', 'loadedAltafinex']);
  // In the script-tag build `window` is the page's; loadAltafinex reads the global one.
  const server = { URL, Promise, Error, TypeError };
  vm.runInNewContext(code, server);
  assert.equal(await server.AltafinexJS.loadAltafinex({ vaultOrigin: VAULT }), null);
});
