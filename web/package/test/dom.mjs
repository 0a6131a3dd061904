// A browser just large enough for react-dom's client renderer and the real web/loader.js, with
// fake card frames answering the postMessage protocol (docs/postmessage.md): each iframe the
// loader appends says `hello`, answers `init` with `ready`, `tokenize` with `tokenized`, and
// records every message it receives. Counts what the e2e test counts in Chromium: iframes
// created, iframes in the document, live `message` listeners.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repo, VAULT } from './helpers.mjs';

const ELEMENT = 1;
const TEXT = 3;
const DOCUMENT = 9;

class Node {
  constructor(ownerDocument, nodeType, nodeName) {
    this.ownerDocument = ownerDocument;
    this.nodeType = nodeType;
    this.nodeName = nodeName;
    this.parentNode = null;
    this.childNodes = [];
    this.listeners = {};
  }
  get firstChild() {
    return this.childNodes[0] || null;
  }
  get isConnected() {
    let n = this;
    while (n.parentNode) n = n.parentNode;
    return n.nodeType === DOCUMENT;
  }
  appendChild(child) {
    return this.insertBefore(child, null);
  }
  insertBefore(child, before) {
    if (child.parentNode) child.parentNode.removeChild(child);
    const i = before ? this.childNodes.indexOf(before) : -1;
    if (i < 0) this.childNodes.push(child);
    else this.childNodes.splice(i, 0, child);
    child.parentNode = this;
    child.connected?.();
    return child;
  }
  removeChild(child) {
    const i = this.childNodes.indexOf(child);
    if (i < 0) throw new Error('removeChild: not a child');
    this.childNodes.splice(i, 1);
    child.parentNode = null;
    return child;
  }
  get textContent() {
    return this.nodeType === TEXT ? this.data : this.childNodes.map((c) => c.textContent).join('');
  }
  set textContent(text) {
    if (this.nodeType === TEXT) {
      this.data = text;
      return;
    }
    for (const c of this.childNodes) c.parentNode = null;
    this.childNodes = text ? [new Text(this.ownerDocument, text)] : [];
  }
  addEventListener(type, f) {
    (this.listeners[type] ||= new Set()).add(f);
  }
  removeEventListener(type, f) {
    this.listeners[type]?.delete(f);
  }
  /** Every descendant element, depth first. */
  *elements() {
    for (const c of this.childNodes) {
      if (c.nodeType === ELEMENT) {
        yield c;
        yield* c.elements();
      }
    }
  }
}

class Text extends Node {
  constructor(doc, data) {
    super(doc, TEXT, '#text');
    this.data = data;
  }
  get nodeValue() {
    return this.data;
  }
}

class Element extends Node {
  constructor(doc, tag) {
    super(doc, ELEMENT, tag.toUpperCase());
    this.tagName = tag.toUpperCase();
    this.namespaceURI = 'http://www.w3.org/1999/xhtml';
    this.attributes = {};
    this.style = { cssText: '' };
    const classes = new Set();
    this.classList = {
      toggle: (c, on) => (on ? classes.add(c) : classes.delete(c), on),
      contains: (c) => classes.has(c),
      values: () => [...classes],
    };
  }
  setAttribute(k, v) {
    this.attributes[k] = String(v);
    if (k === 'id') this.id = String(v);
  }
  getAttribute(k) {
    return k in this.attributes ? this.attributes[k] : null;
  }
  removeAttribute(k) {
    delete this.attributes[k];
  }
  get className() {
    return this.attributes.class || '';
  }
  focus() {}
  /** Elements below this one with that tag name (lower case). */
  all(tag) {
    return [...this.elements()].filter((e) => e.tagName === tag.toUpperCase());
  }
}

/**
 * `{ window, document, frames, counts(), dispatch(), loadLoader() }`: a fake browser window.
 * `frames` lists every iframe created, each with `{ field, group, channel, received, live }`.
 */
export function fakeBrowser({ origin = 'https://shop.example' } = {}) {
  const frames = [];
  const liveListeners = new Set();
  let created = 0;
  const doc = new Node(null, DOCUMENT, '#document');
  doc.ownerDocument = null;
  const html = new Element(doc, 'html');
  doc.appendChild(html);
  doc.documentElement = html;
  doc.head = html.appendChild(new Element(doc, 'head'));
  doc.body = html.appendChild(new Element(doc, 'body'));
  doc.activeElement = null;
  doc.currentScript = null;
  doc.createTextNode = (text) => new Text(doc, text);
  doc.createElement = (tag) => {
    const el = new Element(doc, tag);
    if (tag.toLowerCase() === 'iframe') {
      created++;
      fakeFrame(el);
    }
    return el;
  };
  doc.querySelector = (sel) => [...doc.elements()].find((e) => sel === `#${e.id}`) || null;

  const win = {
    document: doc,
    location: { origin, href: `${origin}/checkout` },
    crypto: globalThis.crypto,
    HTMLIFrameElement: class {},
    self: null,
    top: null,
    event: undefined,
    addEventListener(type, f) {
      if (type === 'message') liveListeners.add(f);
    },
    removeEventListener(type, f) {
      if (type === 'message') liveListeners.delete(f);
    },
  };
  win.self = win;

  /** Delivers a message from a frame to every `message` listener of the page, as a browser would. */
  function dispatch(frame, data) {
    const event = { source: frame.contentWindow, origin: VAULT, data };
    for (const f of [...liveListeners]) f(event);
  }

  function stateOf(frame) {
    const fs = (empty) => ({ empty, valid: !empty, potentiallyValid: true, focused: false, autofilled: false });
    const filled = frame.filled;
    const fields = { number: fs(!filled.number), expiry: fs(!filled.expiry), cvc: fs(!filled.cvc) };
    if (frame.field === 'name' || frame.field === 'postalCode') fields[frame.field] = fs(!filled[frame.field]);
    const complete = Object.values(fields).every((f) => f.valid);
    const number = !frame.field || frame.field === 'number';
    return {
      brand: number && filled.number ? 'visa' : null,
      bin: number && filled.number ? '42424242' : null,
      last4: number && filled.number ? '4242' : null,
      complete,
      empty: !Object.values(fields).some((f) => !f.empty),
      fields,
      error: null,
    };
  }

  // The frame of the loader's iframe `el`: `hello` once connected, then the protocol.
  function fakeFrame(el) {
    const frame = { el, received: [], filled: {}, live: true };
    frames.push(frame);
    el.frame = frame;
    el.contentWindow = {
      postMessage(message, targetOrigin) {
        if (targetOrigin !== VAULT) throw new Error(`posted to ${targetOrigin}`);
        const m = JSON.parse(JSON.stringify(message));
        frame.received.push(m);
        setTimeout(() => answer(frame, m), 0);
      },
    };
    frame.contentWindow = el.contentWindow;
    el.connected = () => {
      const hash = new URLSearchParams(String(el.src).split('#')[1] || '');
      frame.channel = hash.get('channel');
      frame.field = hash.get('field');
      frame.group = hash.get('group');
      setTimeout(() => frame.live && el.isConnected && send(frame, { type: 'hello' }), 0);
    };
  }

  function send(frame, message) {
    dispatch(frame, { v: 1, channel: frame.channel, ...message });
  }

  function answer(frame, m) {
    if (!frame.el.isConnected) return;
    if (m.type === 'init') send(frame, { type: 'ready', height: 40, state: stateOf(frame) });
    if (m.type === 'tokenize') {
      const peers = frames.filter((f) => f.group === frame.group && f.el.isConnected);
      const all = { ...frame.filled };
      for (const p of peers) Object.assign(all, p.filled);
      if (all.number && all.expiry && all.cvc) {
        send(frame, {
          type: 'tokenized',
          id: m.id,
          token: 'tok_test_fake',
          card: { brand: 'visa', last4: '4242', expMonth: 12, expYear: 2030 },
          expiresAt: '2030-01-01T00:00:00Z',
        });
      } else {
        const field = ['number', 'expiry', 'cvc'].find((f) => !all[f]);
        send(frame, { type: 'tokenizeFailed', id: m.id, error: { code: `incomplete_${field}`, message: 'Incomplete.', field } });
      }
    }
  }

  return {
    window: win,
    document: doc,
    frames,
    dispatch,
    /** The cardholder fills `field` in its frame; the frame reports `change`. */
    type(frame, field) {
      frame.filled[field] = true;
      send(frame, { type: 'change', state: stateOf(frame) });
    },
    focus(frame) {
      send(frame, { type: 'focus', field: frame.field || 'number' });
    },
    counts() {
      return {
        created,
        inDom: doc.documentElement.all('iframe').length,
        listeners: liveListeners.size,
      };
    },
    /** Runs web/loader.js against this window (sets `window.Altafinex`). */
    loadLoader() {
      const src = readFileSync(join(repo, 'web', 'loader.js'), 'utf8');
      new Function('window', 'document', 'console', src)(win, doc, { warn() {} });
      return win.Altafinex;
    },
    Element,
  };
}
