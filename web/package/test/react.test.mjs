// The React binding during server-side rendering: it renders its <div>s and touches no window.
// (Mounting, StrictMode's double mount included: test/react-dom.test.mjs over a fake browser,
// and the e2e scenarios in tests/e2e/tests/package.rs in Chromium.)
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

test('split fields render on the server without a window: a <div> per field, no card', async () => {
  assert.equal(typeof globalThis.window, 'undefined');
  const { createReactBinding } = await import('../src/react-binding.js');
  const b = createReactBinding(React);
  const seen = [];
  function Pay() {
    const group = b.useCardFields();
    seen.push(group);
    return h('button', { disabled: !group.ready }, 'Pay');
  }
  function OwnMarkup() {
    const f = b.useCardFieldElement('name');
    return h('span', { ref: f.ref, 'data-element': String(f.element !== null) });
  }
  const html = renderToString(
    h(React.StrictMode, null,
      h(b.AltafinexProvider, { options: { vaultOrigin: VAULT } },
        h(b.CardFields, { options: { key: 'pk_test_x' }, onChange: () => {} },
          h(b.CardNumberField, { id: 'n', className: 'field' }),
          h(b.CardExpiryField, { id: 'e' }),
          h(b.CardCvcField, { id: 'c' }),
          h(b.CardPostalCodeField, { id: 'p' }),
          h(OwnMarkup),
          h(Pay)))),
  );
  assert.equal(html,
    '<div id="n" class="field"></div><div id="e"></div><div id="c"></div><div id="p"></div>' +
    '<span data-element="false"></span><button disabled="">Pay</button>');
  const group = seen.at(-1);
  assert.deepEqual({ ...group, tokenize: typeof group.tokenize }, { card: null, ready: false, state: null, error: null, tokenize: 'function' });
  await assert.rejects(group.tokenize(), { code: 'not_ready' });
});

test('the hooks say what is missing without a provider', async () => {
  const { createReactBinding } = await import('../src/react-binding.js');
  const { CardElement } = createReactBinding(React);
  assert.throws(() => renderToString(h(CardElement, { options: { key: 'pk_test_x' } })), /AltafinexProvider/);
  assert.equal(renderToString(h(CardElement, { options: { key: 'pk_test_x' }, load: { vaultOrigin: VAULT } })), '<div></div>');
  const b = createReactBinding(React);
  assert.throws(() => renderToString(h(b.CardNumberField)), /useCardFieldElement: render inside <CardFields>/);
  assert.throws(() => renderToString(h(b.CardFields, { options: { key: 'pk_test_x' } })), /AltafinexProvider/);
});

test('@altafinex/js/react binds the React that `react` resolves to', async () => {
  // As a bundler would: 'react' resolved from the package's node_modules (linked to .tools).
  const link = join(pkg, 'node_modules', 'react');
  if (!existsSync(link)) {
    mkdirSync(join(pkg, 'node_modules'), { recursive: true });
    symlinkSync(join(tools, 'react'), link, 'dir');
  }
  const binding = await import('../src/react.js');
  assert.deepEqual(Object.keys(binding).sort(), [
    'AltafinexProvider', 'CardCvcField', 'CardElement', 'CardExpiryField', 'CardFields', 'CardNameField',
    'CardNumberField', 'CardPostalCodeField', 'createReactBinding', 'useAltafinex', 'useCardElement',
    'useCardFieldElement', 'useCardFields',
  ]);
  const html = renderToString(h(binding.CardElement, { options: { key: 'pk_test_x' }, load: { vaultOrigin: VAULT } }));
  assert.equal(html, '<div></div>');
  const split = renderToString(
    h(binding.CardFields, { options: { key: 'pk_test_x' }, load: { vaultOrigin: VAULT } }, h(binding.CardNumberField)),
  );
  assert.equal(split, '<div></div>');
});
