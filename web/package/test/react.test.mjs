// The React binding during server-side rendering: it renders its <div> and touches no window.
// (Mounting in a browser, StrictMode's double mount included, is the e2e scenario
// `npm_package_react_strict_mode` in tests/e2e/tests/package.rs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { VAULT, pkg, tool, tools } from './helpers.mjs';

const React = tool('react');
const { renderToString } = tool('react-dom/server');
const h = React.createElement;

test('CardElement and the hooks render on the server without a window', async () => {
  assert.equal(typeof globalThis.window, 'undefined');
  const { createReactBinding } = await import('../src/react-binding.js');
  const { AltafinexProvider, CardElement, useAltafinex, useCardElement } = createReactBinding(React);
  function Checkout() {
    const { altafinex } = useAltafinex();
    const card = useCardElement({ key: 'pk_test_x' });
    return h('p', { 'data-loaded': String(altafinex !== null), 'data-element': String(card.element !== null) });
  }
  const html = renderToString(
    h(React.StrictMode, null,
      h(AltafinexProvider, { options: { vaultOrigin: VAULT } },
        h(CardElement, { options: { key: 'pk_test_x' }, className: 'card', id: 'card-element' }),
        h(Checkout))),
  );
  assert.equal(html, '<div id="card-element" class="card"></div><p data-loaded="false" data-element="false"></p>');
});

test('the hooks say what is missing without a provider', async () => {
  const { createReactBinding } = await import('../src/react-binding.js');
  const { CardElement } = createReactBinding(React);
  assert.throws(() => renderToString(h(CardElement, { options: { key: 'pk_test_x' } })), /AltafinexProvider/);
  assert.equal(renderToString(h(CardElement, { options: { key: 'pk_test_x' }, load: { vaultOrigin: VAULT } })), '<div></div>');
});

test('@altafinex/js/react binds the React that `react` resolves to', async () => {
  // As a bundler would: 'react' resolved from the package's node_modules (linked to .tools).
  const link = join(pkg, 'node_modules', 'react');
  if (!existsSync(link)) {
    mkdirSync(join(pkg, 'node_modules'), { recursive: true });
    symlinkSync(join(tools, 'react'), link, 'dir');
  }
  const binding = await import('../src/react.js');
  assert.deepEqual(Object.keys(binding).sort(), ['AltafinexProvider', 'CardElement', 'createReactBinding', 'useAltafinex', 'useCardElement']);
  const html = renderToString(h(binding.CardElement, { options: { key: 'pk_test_x' }, load: { vaultOrigin: VAULT } }));
  assert.equal(html, '<div></div>');
});
