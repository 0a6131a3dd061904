// The React binding mounted by react-dom (development build, so StrictMode really runs mount →
// unmount → mount) over the real web/loader.js, in a fake browser whose card frames answer the
// postMessage protocol (test/dom.mjs). What Chromium checks end to end (tests/e2e/tests/
// package.rs), checked here for every case: iframes, message listeners, update() without a
// remount, tokenize through the hook, no unhandled rejection.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { fakeBrowser } from './dom.mjs';
import { VAULT, tool } from './helpers.mjs';

// react-dom reads `window` when it is first loaded and while rendering.
let browser = fakeBrowser();
globalThis.window = browser.window;
globalThis.document = browser.document;
globalThis.IS_REACT_ACT_ENVIRONMENT = true;
const React = tool('react');
const { createRoot } = tool('react-dom/client');
const { act, createElement: h, StrictMode } = React;
const { createReactBinding } = await import('../src/react-binding.js');

const unhandled = [];
process.on('unhandledRejection', (e) => unhandled.push(e));
const consoleErrors = [];
const consoleError = console.error;

let root;
let host;
beforeEach(() => {
  browser = fakeBrowser();
  globalThis.window = browser.window;
  globalThis.document = browser.document;
  unhandled.length = 0;
  consoleErrors.length = 0;
  console.error = (...args) => consoleErrors.push(args.map(String).join(' '));
  host = browser.document.body.appendChild(browser.document.createElement('div'));
  root = createRoot(host);
});
afterEach(async () => {
  await act(async () => root.unmount());
  console.error = consoleError;
});

/** Lets the fake frames answer (each hop is a timer) and React apply what they said. */
async function settle(ms = 30) {
  await act(async () => {
    await new Promise((r) => setTimeout(r, ms));
  });
}

async function render(element) {
  await act(async () => root.render(element));
  await settle();
}

function binding() {
  const Altafinex = browser.loadLoader();
  return createReactBinding(React, async () => Altafinex);
}

const LOAD = { vaultOrigin: VAULT };

/** The frames of the fake browser still in the document, by field. */
function liveFrames() {
  const byField = {};
  for (const f of browser.frames) if (f.el.isConnected) byField[f.field || 'card'] = f;
  return byField;
}

function splitCheckout(b, { options = { key: 'pk_test_x' }, fields = ['number', 'expiry', 'cvc'], events = [], props = {}, probe, elements = {} } = {}) {
  const components = { number: b.CardNumberField, expiry: b.CardExpiryField, cvc: b.CardCvcField, name: b.CardNameField, postalCode: b.CardPostalCodeField };
  function Probe() {
    probe.current = b.useCardFields();
    return null;
  }
  return h(StrictMode, null,
    h(b.AltafinexProvider, { options: LOAD },
      h(b.CardFields, {
        options,
        onChange: (s) => events.push(['group change', s.complete]),
        onReady: (s, card) => events.push(['group ready', typeof card.tokenize]),
        onFocus: (p) => events.push(['group focus', p.field]),
        onElement: (card) => (elements.card = card),
        ...props,
      },
      ...fields.map((f) => h(components[f], {
        key: f,
        id: `card-${f}`,
        className: 'field',
        onFocus: (p, el) => events.push([`${f} focus`, p.field, typeof el.clear]),
        onChange: (s) => events.push([`${f} change`, s.fields[f].valid]),
        onReady: () => events.push([`${f} ready`]),
        onElement: (el) => (elements[f] = el),
      })),
      probe ? h(Probe) : null)));
}

test('split fields under StrictMode: one iframe and one listener per field, one group, a token', async () => {
  const b = binding();
  const events = [];
  const probe = {};
  const elements = {};
  await act(async () => root.render(splitCheckout(b, { events, probe, elements })));
  // Remounted by StrictMode, not ready yet: not_ready (the loader alone would say destroyed).
  assert.equal(probe.current.ready, false);
  await assert.rejects(probe.current.tokenize(), { code: 'not_ready' });
  await settle();

  // StrictMode mounted each field twice on the same card: 6 iframes made, 3 left.
  assert.deepEqual(browser.counts(), { created: 6, inDom: 3, listeners: 3 });
  for (const f of ['number', 'expiry', 'cvc']) {
    const div = browser.document.querySelector(`#card-${f}`);
    const iframes = div.all('iframe');
    assert.equal(iframes.length, 1, `one iframe in #card-${f}`);
    assert.equal(iframes[0].frame.field, f);
  }
  const live = liveFrames();
  assert.equal(new Set(Object.values(live).map((f) => f.group)).size, 1, 'one group');
  assert.equal(probe.current.ready, true);
  assert.equal(probe.current.state.complete, false);
  assert.equal(probe.current.error, null);
  assert.equal(elements.card, probe.current.card, 'onElement of <CardFields>: the card once ready');
  for (const f of ['number', 'expiry', 'cvc']) assert.equal(typeof elements[f].focus, 'function', `onElement of the ${f} field`);
  assert.ok(events.some((e) => e[0] === 'group ready'));
  for (const f of ['number', 'expiry', 'cvc']) assert.ok(events.some((e) => e[0] === `${f} ready`));

  // Per-field events reach the field's props, every field's reach the group's.
  await act(async () => browser.focus(live.expiry));
  await settle();
  assert.deepEqual(events.filter((e) => /focus/.test(e[0])), [['expiry focus', 'expiry', 'function'], ['group focus', 'expiry']]);

  const early = probe.current.tokenize();
  await assert.rejects(early, { code: 'incomplete_number' });
  for (const f of ['number', 'expiry', 'cvc']) await act(async () => browser.type(live[f], f));
  await settle();
  assert.equal(probe.current.state.complete, true);
  assert.ok(events.some((e) => e[0] === 'number change' && e[1] === true));
  let result;
  await act(async () => {
    result = await probe.current.tokenize();
  });
  assert.equal(result.token, 'tok_test_fake');
  assert.equal(live.number.received.filter((m) => m.type === 'tokenize').length, 2);

  await act(async () => root.unmount());
  assert.deepEqual(browser.counts(), { created: 6, inDom: 0, listeners: 0 });
  assert.deepEqual(elements, { card: null, number: null, expiry: null, cvc: null }, 'onElement(null) when they go');
  root = createRoot(host);
  await settle();
  assert.deepEqual(unhandled, []);
  assert.deepEqual(consoleErrors, []);
});

test('changing updatable options calls update() in every field frame, without a remount', async () => {
  const b = binding();
  const events = [];
  await render(splitCheckout(b, { events, options: { key: 'pk_test_x', disabled: false } }));
  const before = liveFrames();
  await act(async () => browser.type(before.number, 'number'));
  await render(splitCheckout(b, { events, options: { key: 'pk_test_x', disabled: true, style: { base: { color: '#111' } } } }));
  // New handler props too: still no remount.
  await render(splitCheckout(b, { events: [], options: { key: 'pk_test_x', disabled: true, style: { base: { color: '#111' } } } }));
  assert.deepEqual(browser.counts(), { created: 6, inDom: 3, listeners: 3 });
  assert.deepEqual(liveFrames(), before, 'the same frames (typed values stay)');
  for (const frame of Object.values(before)) {
    const updates = frame.received.filter((m) => m.type === 'update');
    assert.equal(updates.length, 1, `one update for the ${frame.field} frame`);
    assert.equal(updates[0].disabled, true);
    assert.deepEqual(updates[0].style, { base: { color: '#111' } });
  }
  assert.deepEqual(unhandled, []);
});

test('changing another option makes a new card: every field mounts again, nothing leaks', async () => {
  const b = binding();
  await render(splitCheckout(b));
  const group = liveFrames().number.group;
  await render(splitCheckout(b, { options: { key: 'pk_test_x', errors: 'none' } }));
  assert.deepEqual(browser.counts(), { created: 9, inDom: 3, listeners: 3 });
  const live = liveFrames();
  assert.notEqual(live.number.group, group);
  assert.equal(live.number.received[0].errors, 'none');
  assert.deepEqual(unhandled, []);
});

test('an optional field joins the card in place; when it leaves, the card starts again without it', async () => {
  const b = binding();
  const probe = {};
  await render(splitCheckout(b, { probe }));
  const group = liveFrames().number.group;
  await render(splitCheckout(b, { probe, fields: ['number', 'expiry', 'cvc', 'postalCode'] }));
  assert.deepEqual(browser.counts(), { created: 8, inDom: 4, listeners: 4 });
  assert.equal(liveFrames().postalCode.group, group, 'the same card');
  assert.equal(probe.current.ready, true);
  assert.ok(probe.current.state.fields.postalCode);

  await render(splitCheckout(b, { probe }));
  const live = liveFrames();
  assert.deepEqual(browser.counts(), { created: 11, inDom: 3, listeners: 3 });
  assert.notEqual(live.number.group, group, 'a new card');
  for (const f of ['number', 'expiry', 'cvc']) await act(async () => browser.type(live[f], f));
  let result;
  await act(async () => {
    result = await probe.current.tokenize();
  });
  assert.equal(result.token, 'tok_test_fake');
  const tokenize = live.number.received.find((m) => m.type === 'tokenize');
  assert.deepEqual(tokenize.fields, { name: false, postalCode: false });
  assert.deepEqual(unhandled, []);
});

test('fields mount once the loader arrives; tokenize() before that rejects not_ready', async () => {
  const Altafinex = browser.loadLoader();
  let arrive;
  const arrived = new Promise((r) => {
    arrive = r;
  });
  // The loader is not on the page yet: loadedAltafinex() is null at the first render.
  delete browser.window.Altafinex;
  const b = createReactBinding(React, () => arrived);
  const probe = {};
  await render(splitCheckout(b, { probe, options: { key: 'pk_test_x', messages: { not_ready: 'Un moment.' } } }));
  assert.equal(probe.current.card, null);
  await assert.rejects(probe.current.tokenize(), { code: 'not_ready', message: 'Un moment.' });
  assert.equal(browser.counts().created, 0);
  await act(async () => arrive(Altafinex));
  await settle();
  assert.deepEqual(browser.counts(), { created: 3, inDom: 3, listeners: 3 });
  assert.equal(probe.current.ready, true);
});

test('a field rendered twice in one group mounts once and reports an error', async () => {
  const b = binding();
  const seen = [];
  function Second() {
    const f = b.useCardFieldElement('number');
    if (f.error) seen.push(f.error.message);
    return h('div', { ref: f.ref, id: 'second' });
  }
  await render(h(b.CardFields, { options: { key: 'pk_test_x' }, load: LOAD }, h(b.CardNumberField, { id: 'first' }), h(Second)));
  assert.equal(browser.document.querySelector('#first').all('iframe').length, 1);
  assert.equal(browser.document.querySelector('#second').all('iframe').length, 0);
  assert.match(seen.at(-1), /number field is rendered twice/);
  assert.throws(() => b.useCardFieldElement('pan'), /unknown field "pan"/);
});

test('the hooks say what is missing outside <CardFields>', async () => {
  const b = binding();
  function Orphan() {
    b.useCardFields();
    return null;
  }
  await assert.rejects(
    async () => act(async () => root.render(h(Orphan))),
    /useCardFields: render inside <CardFields>/,
  );
});

test('<CardElement> under StrictMode: one iframe and one listener (the single frame)', async () => {
  const b = binding();
  let card = null;
  await render(h(StrictMode, null, h(b.CardElement, { options: { key: 'pk_test_x' }, load: LOAD, onElement: (c) => (card = c) })));
  assert.deepEqual(browser.counts(), { created: 2, inDom: 1, listeners: 1 });
  assert.equal(typeof card.tokenize, 'function');
  await act(async () => root.unmount());
  assert.deepEqual(browser.counts(), { created: 2, inDom: 0, listeners: 0 });
  assert.equal(card, null);
  root = createRoot(host);
  assert.deepEqual(unhandled, []);
});
