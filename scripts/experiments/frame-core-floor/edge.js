// Experiment, not shipped (BENCHMARKS.md, "How small a Rust/WASM frame can get"): the frame's
// browser edge written by hand in JS over the frame-core-floor API (src/lib.rs), to measure what
// option (a) would put on the wire. It mirrors crates/frame/src/dom.rs, net.rs, fonts.rs, jsread.rs,
// jswrite.rs and the split fields' peer messages, feature by feature. It is measured (measure.sh)
// and mounted by the e2e bench (dist.py): mount, typing and the split fields' mount have run;
// tokenize, fonts, `update` and the error paths have not. It is not a tested frame.
import init, * as c from './core.js';

const F = ['number', 'expiry', 'cvc', 'name', 'postalCode'];
const VARIANTS = ['base', 'empty', 'complete', 'autofilled', 'invalid', 'hover', 'focus', 'disabled'];
const ICONS = ['visa', 'mastercard', 'maestro', 'amex', 'discover', 'diners', 'jcb', 'unionpay'];
const BACKOFF = [300, 600, 1200, 2400];
const RS = '\x1e', US = '\x1f', GS = '\x1d';
const $ = (id) => document.getElementById(id);
const str = (v) => typeof v === 'string';
const obj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const absent = (v) => v === null || v === undefined;
const today = () => { const d = new Date(); return [d.getFullYear(), d.getMonth() + 1]; };
const langs = () => (navigator.languages || []).join('\n');

class Bad extends Error {}
const need = (ok) => { if (!ok) throw new Bad(); };
const optStr = (o, k) => { const v = o[k]; if (absent(v)) return undefined; need(str(v)); return v; };
const optBool = (o, k) => { const v = o[k]; if (absent(v)) return undefined; need(typeof v === 'boolean'); return v; };
const optObj = (o, k) => { const v = o[k]; if (absent(v)) return undefined; need(obj(v)); return v; };
const texts = (o, k) => { const t = optObj(o, k); return t && F.map((f) => optStr(t, f)); };
const pairs = (o, k) => { const t = optObj(o, k); return t && Object.keys(t).map((n) => { need(str(t[n])); return [n, t[n]]; }); };

let p, channel, origin, split, key, fr;
const els = F.map((id) => ({ input: $(id), wrap: $(id).parentElement, label: document.querySelector(`label[for=${id}]`), applied: -1, inline: [], aria: 0 }));
const form = $('card'), error = $('error'), icon = $('brand-icon');
const icons = '/v1/frame/' + icon.parentElement.getAttribute('data-icons');

function post(type, fields) {
  try { parent.postMessage(Object.assign({ v: 1, channel, type }, fields), origin); } catch (e) { /* a page gone away */ }
}

function readMessage(d) {
  const m = {};
  m.field = optStr(d, 'field');
  if (m.field !== undefined) need(F.includes(m.field));
  const style = optObj(d, 'style');
  m.style = style && Object.keys(style).map((v) => { need(obj(style[v])); return [v, pairs(style, v)]; });
  const fields = optObj(d, 'fields');
  m.fields = fields && [optBool(fields, 'name') || false, optBool(fields, 'postalCode') || false];
  need(d.v === 1 && str(d.channel) && str(d.type));
  m.id = optStr(d, 'id');
  m.locale = optStr(d, 'locale');
  m.placeholders = texts(d, 'placeholders');
  m.label = texts(d, 'label');
  m.ariaLabel = texts(d, 'ariaLabel');
  m.showLabels = optBool(d, 'showLabels');
  m.errors = optStr(d, 'errors');
  m.messages = pairs(d, 'messages');
  m.appearance = pairs(d, 'appearance');
  m.disabled = optBool(d, 'disabled');
  m.fonts = Array.isArray(d.fonts) ? d.fonts.map((f) => obj(f) ? f : {}) : undefined;
  return m;
}

// The trust gate: parent window, exact origin, size, shape, version, channel.
addEventListener('message', (e) => {
  if (e.source !== parent || e.origin !== origin || !obj(e.data)) return;
  let m;
  try {
    if (JSON.stringify(e.data).length > 32768) return;
    m = readMessage(e.data);
  } catch (x) { return; }
  if (e.data.channel !== channel) return;
  switch (e.data.type) {
    case 'init': if (!fr.init) { fr.init = 1; onInit(m); } break;
    case 'update': configure(m, false); break;
    case 'focus': if (m.field && !els[F.indexOf(m.field)].wrap.hidden) els[F.indexOf(m.field)].input.focus(); break;
    case 'clear': clear(m.field); break;
    case 'blur': if (document.activeElement) document.activeElement.blur(); break;
    case 'tokenize': if (m.id && m.id.length <= 64) tokenize(m.id, m.fields); break;
  }
});

function onInit(m) {
  c.options(...(m.fields || [false, false]), ...today());
  fr.fields = m.fields || [false, false];
  c.messages((m.messages || []).map((x) => x.join(US)).join(RS));
  const show = m.errors !== 'none';
  error.classList.toggle('sr', !show);
  if (show) error.setAttribute('role', 'alert'); else error.removeAttribute('role');
  const pending = configure(Object.assign({ style: [], appearance: [], placeholders: [], label: [], ariaLabel: [], showLabels: false, disabled: false }, m), true);
  fr.fontsPending = fonts(m.fonts || []);
  fr.localePending = pending;
  tryReady();
}

function configure(m, first) {
  if (m.locale !== undefined) fr.locale = c.set_locale(m.locale, langs()).split(US);
  if (m.placeholders) fr.placeholders = m.placeholders;
  if (m.label) fr.labels = m.label;
  if (m.ariaLabel) fr.ariaLabels = m.ariaLabel;
  if (m.showLabels !== undefined) fr.showLabels = m.showLabels;
  if (m.disabled !== undefined) fr.disabled = m.disabled;
  let rejected = [];
  if (m.style) {
    const [ok, bad] = c.sanitize_style(m.style.flatMap(([v, ds]) => ds.map(([k, x]) => [v, k, x].join(US))).join(RS)).split(GS);
    rejected = bad.split(RS).filter(Boolean);
    fr.style = {};
    for (const r of ok.split(RS).filter(Boolean)) {
      const [v, k, x] = r.split(US);
      if (k[0] !== '-' && !CSS.supports(k, x)) { rejected.push(`${v}.${k}`); continue; }
      (fr.style[v] = fr.style[v] || []).push([k, x]);
    }
    placeholderStyle();
    for (const el of els) el.applied = -1;
  }
  if (m.appearance) {
    const [ok, bad] = c.sanitize_appearance(m.appearance.map((x) => x.join(US)).join(RS)).split(GS);
    rejected.push(...bad.split(RS).filter(Boolean));
    const root = document.documentElement.style;
    for (const [k] of fr.theme) root.removeProperty(k);
    fr.theme = [];
    for (const r of ok.split(RS).filter(Boolean)) {
      const [k, as, x] = r.split(US);
      if (CSS.supports(as, x)) { root.setProperty(k, x); fr.theme.push([k, x]); } else rejected.push('appearance.variables.' + k.replace(/^--af-/, ''));
    }
  }
  const load = fr.locale[2] !== '1';
  applyText();
  render();
  if (load) loadLocale(fr.locale[0]);
  if (first) fr.warning = rejected; else warn(rejected);
  return load;
}

function warn(list) {
  if (list.length) post('warning', { code: 'style_rejected', message: 'Style properties not applied (not allowed, unsafe or invalid values): ' + list.join(', '), properties: list });
}

function loadLocale(lang) {
  const done = () => { applyText(); render(); if (!fr.ready) { fr.localePending = false; tryReady(); } };
  fetch(`/v1/frame/locale-${lang}.json`).then((r) => r.ok ? r.json() : undefined).then((t) => {
    if (obj(t) && obj(t.errors) && t.lang === lang) {
      const keys = ['number_label', 'expiry_label', 'cvc_label', 'name_label', 'postal_label', 'number_placeholder', 'expiry_placeholder', 'name_placeholder'];
      const rows = keys.map((k) => [k, t[k]]).concat(Object.keys(t.errors).map((k) => [k, t.errors[k]]));
      if (rows.every(([, v]) => str(v))) c.register_locale(lang, rows.map((r) => r.join(US)).join(RS));
    }
  }).catch(() => {}).then(done);
}

function fonts(list) {
  if (!list.length) return false;
  const failed = [], faces = [];
  list.forEach((f, i) => {
    const weight = typeof f.weight === 'number' ? String(f.weight) : f.weight;
    if (i < 8 && str(f.family) && str(f.src) && c.font_ok(f.family, f.src, str(weight) ? weight : '400', str(f.style) ? f.style : 'normal')) {
      try {
        const face = new FontFace(f.family, `url(${f.src})`, { weight: weight || '400', style: f.style || 'normal' });
        document.fonts.add(face);
        faces.push([face, face.load()]);
        return;
      } catch (e) { /* invalid descriptors */ }
    }
    failed.push(str(f.family) ? f.family : '');
  });
  let done = () => {
    done = () => {};
    for (const [face] of faces) if (face.status !== 'loaded') failed.push(face.family.replace(/^"|"$/g, ''));
    fr.fontsPending = false;
    height();
    tryReady();
    if (failed.length) post('warning', { code: 'font_failed', message: 'Web fonts not loaded (not registered, invalid or too slow): ' + failed.join(', '), properties: failed });
  };
  Promise.allSettled(faces.map((f) => f[1])).then(() => done());
  setTimeout(() => done(), 3000);
  return faces.length > 0 || (done(), false);
}

function tryReady() {
  if (fr.localePending || fr.fontsPending) return;
  if (!fr.ready) {
    fr.ready = 1;
    fr.height = measure();
    fr.state = c.state();
    post('ready', { height: fr.height, state: JSON.parse(fr.state) });
  }
  warn(fr.warning);
  fr.warning = [];
}

function applyText() {
  const t = c.texts().split(US);
  document.documentElement.setAttribute('lang', fr.locale[0]);
  document.documentElement.setAttribute('dir', fr.locale[1] ? 'rtl' : 'ltr');
  const flags = c.flags();
  els.forEach((el, i) => {
    const on = (flags.charCodeAt(i) - 64) & 64;
    el.wrap.hidden = !on;
    el.input.disabled = !on || fr.disabled;
    el.label.textContent = fr.labels[i] || t[i];
    el.label.classList.toggle('sr', !fr.showLabels);
    const a = fr.ariaLabels[i];
    if (a && a.trim()) el.input.setAttribute('aria-label', a); else el.input.removeAttribute('aria-label');
  });
  placeholders();
}

function placeholders() {
  const t = c.texts().split(US);
  els.forEach((el, i) => el.input.setAttribute('placeholder', fr.placeholders[i] || t[5 + i]));
}

function placeholderStyle() {
  if (!fr.rule) {
    const sheet = [...document.styleSheets].find((s) => { try { return s.cssRules; } catch (e) { return false; } });
    if (!sheet) return;
    fr.rule = sheet.cssRules[sheet.insertRule('form input::placeholder{}', sheet.cssRules.length)].style;
  }
  for (const k of fr.ruleProps) fr.rule.removeProperty(k);
  fr.ruleProps = [];
  for (const [k, x] of fr.style.placeholder || []) { fr.rule.setProperty(k, x); fr.ruleProps.push(k); }
}

function render() {
  const flags = c.flags();
  const brand = flags.slice(5) || null;
  if (brand !== fr.brand || !fr.state) {
    icon.setAttribute('href', ICONS.includes(brand) ? `${icons}#b-${brand}` : '#b-generic');
    placeholders();
    if (fr.state && (!split || split === 'number')) post('brand', { brand });
    if (split === 'number') peer({ t: 1, x: brand || undefined });
    fr.brand = brand;
  }
  const state = c.state();
  const parsed = JSON.parse(state);
  const msg = parsed.error && parsed.error.message;
  if (msg !== fr.errorText) { error.textContent = msg || ''; fr.errorText = msg; }
  els.forEach((el, i) => {
    const b = flags.charCodeAt(i) - 64;
    const aria = b & 3;
    if (aria !== el.aria) {
      el.aria = aria;
      el.input.setAttribute('aria-invalid', b & 1 ? 'true' : 'false');
      if (b & 2) el.input.setAttribute('aria-describedby', 'error'); else el.input.removeAttribute('aria-describedby');
    }
    const on = [1, b & 4, b & 8, b & 16, b & 1, fr.hover === i, b & 32, fr.disabled];
    const bits = on.reduce((s, x, k) => s | (x ? 1 << k : 0), 0);
    if (bits !== el.applied) {
      el.applied = bits;
      for (const k of el.inline) el.input.style.removeProperty(k);
      el.inline = [];
      VARIANTS.forEach((v, k) => {
        if (bits & (1 << k)) for (const [p, x] of fr.style[v] || []) { el.input.style.setProperty(p, x); el.inline.push(p); }
      });
    }
  });
  if (state !== fr.state) {
    if (fr.ready) post('change', { state: parsed });
    fr.state = state;
  }
}

function measure() { return Math.ceil(Math.max(0, form.getBoundingClientRect().bottom)); }
function height() {
  const h = measure();
  if (fr.ready && h !== fr.height) { fr.height = h; post('resize', { height: h }); }
}

function setValue(el, text, caret, focused) {
  el.input.value = text;
  if (focused) {
    let units = 0, n = 0;
    for (const ch of text) { if (n++ >= caret) break; units += ch.length; }
    el.input.setSelectionRange(units, units);
  }
}
const charIndex = (v, units) => { let u = 0, n = 0; for (const ch of v) { if (u >= units) return n; u += ch.length; n++; } return n; };

function onBeforeInput(i, e) {
  const el = els[i];
  if (e.isComposing) return;
  const t = e.inputType;
  const op = /^insert(Text|ReplacementText|FromPaste|FromDrop|FromYank)$/.test(t) ? 0
    : /^delete(ContentBackward|WordBackward|SoftLineBackward|HardLineBackward|ByCut|Content|ByDrag)$/.test(t) ? 1
    : /^delete(ContentForward|WordForward|SoftLineForward|HardLineForward)$/.test(t) ? 2 : -1;
  if (op < 0 || i > 2) return;
  e.preventDefault();
  const old = el.input.value;
  const start = el.input.selectionStart || 0, end = Math.max(start, el.input.selectionEnd || start);
  const data = op ? '' : (e.data ?? (e.dataTransfer ? e.dataTransfer.getData('text/plain') : ''));
  const [caret, text, advance] = c.edit(i, old, charIndex(old, start), charIndex(old, end), op, data).split(US);
  setValue(el, text, +caret, true);
  fr.masked[i] = 0;
  render();
  if (!advance) return;
  if (split) { peer({ t: 4, f: F[i] }); return; }
  els[F.indexOf(advance)].input.focus();
}

function onInput(i, autofill) {
  const el = els[i];
  const focused = document.activeElement === el.input;
  const raw = el.input.value;
  const caret = el.input.selectionStart;
  const [at, text, first] = c.input(i, raw, caret === null ? raw.length : charIndex(raw, caret), autofill).split(US);
  if (text !== undefined && first !== undefined && text !== raw) setValue(el, text, +at, focused);
  if ((first ?? at) === '1') post('autofill', { field: F[i] });
  fr.masked[i] = 0;
  if (!focused) mask(i);
  render();
}

function mask(i) {
  const m = c.mask(i);
  if (m !== undefined) { els[i].input.value = m; fr.masked[i] = 1; }
}

function clear(field) {
  const list = field ? [F.indexOf(field)] : F.map((_, i) => i);
  c.clear(field ? list[0] : 255);
  fr.key = null;
  for (const i of list) { els[i].input.value = ''; fr.masked[i] = 0; }
  render();
}

function onField(i, e) {
  switch (e.type) {
    case 'beforeinput': onBeforeInput(i, e); break;
    case 'input':
      if (!e.isComposing) onInput(i, !(e instanceof InputEvent) || e.target.matches(':autofill') || e.target.matches(':-webkit-autofill'));
      break;
    case 'compositionend': onInput(i, false); break;
    case 'mouseenter': case 'mouseleave':
      fr.hover = e.type === 'mouseenter' ? i : fr.hover === i ? -1 : fr.hover;
      render();
      break;
    case 'focus': {
      const v = c.focus(i);
      if (fr.masked[i]) { els[i].input.value = v; fr.masked[i] = 0; }
      post('focus', { field: F[i] });
      render();
      break;
    }
    case 'blur': c.focus(255); mask(i); post('blur', { field: F[i] }); render(); break;
    case 'keydown':
      if (e.key === 'Enter') { e.preventDefault(); post('submit'); }
      if (e.key === 'Escape') post('escape', { field: F[i] });
      break;
  }
}

// Tokenize: split fields collect first; retries with backoff; the answer read and checked.
function tokenize(id, fields) {
  if (fr.busy) return failed(id, 'tokenize_in_progress');
  if (split && split !== 'number') return;
  if (split) {
    fr.busy = 1;
    const nonce = newKey();
    c.collect_start(nonce, ...(fields || [false, false]), ...today());
    peer({ t: 2, n: nonce });
    let waited = 0;
    const wait = () => (fr.collected || waited >= 1500 ? submit(id) : (waited += 20, setTimeout(wait, 20)));
    fr.collected = 0;
    wait();
  } else submit(id);
}

function submit(id) {
  fr.busy = 0;
  const body = c.body(...today());
  render();
  if (body[0] === US) {
    const [, field, code] = body.split(US);
    failed(id, code, field);
    peer({ t: 5, f: field });
    const i = F.indexOf(field);
    if (!els[i].wrap.hidden) els[i].input.focus();
    return;
  }
  if (split && fr.kept !== body) fr.key = null;
  fr.key = fr.key || newKey();
  fr.kept = null;
  fr.busy = 1;
  attempt(id, body, fr.key, 0);
}

function attempt(id, body, idem, n) {
  const retry = (hint) => n < 4 ? (setTimeout(() => attempt(id, body, idem, n + 1), Math.max(BACKOFF[n], hint)), true) : false;
  fetch('/v1/tokens', {
    method: 'POST', body, credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer',
    headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json', 'Idempotency-Key': idem },
  }).then((r) => {
    if ([409, 429, 502, 503, 504].includes(r.status)) {
      const ra = r.headers.get('Retry-After');
      if (retry(/^\d{1,6}$/.test(ra || '') ? Math.min(+ra * 1000, 10000) : 0)) return;
    }
    r.json().catch(() => undefined).then((b) => finish(id, body, r, b));
  }, () => { if (!retry(0)) finish(id, body, null); });
}

function finish(id, body, r, b) {
  fr.busy = 0;
  if (split && (!r || r.status === 429)) fr.kept = body;
  if (!r) return failed(id, 'network_error');
  if (r.ok) {
    const card = obj(b) && obj(b.card) ? b.card : null;
    const ok = card && str(b.id) && str(card.brand) && str(card.last4) && Number.isInteger(card.exp_month) && card.exp_month >= 0 && card.exp_month < 256 && Number.isInteger(card.exp_year) && card.exp_year >= 0 && card.exp_year < 65536 && (typeof b.expires_at === 'number' || str(b.expires_at));
    if (!ok) return failed(id, 'processing_error');
    fr.key = null;
    c.forget_cvc();
    els[2].input.value = '';
    fr.masked[2] = 0;
    render();
    peer({ t: 6 });
    const at = typeof b.expires_at === 'number' ? new Date(b.expires_at * 1000).toISOString().replace(/\.\d+Z$/, 'Z') : b.expires_at;
    post('tokenized', { id, token: b.id, card: { brand: card.brand, last4: card.last4, expMonth: card.exp_month, expYear: card.exp_year }, expiresAt: at });
    return;
  }
  const e = obj(b) && obj(b.error) ? b.error : {};
  const code = str(e.code) ? e.code : { 400: 'invalid_request', 401: 'unauthorized', 403: 'forbidden', 413: 'payload_too_large', 429: 'rate_limited' }[r.status] || 'processing_error';
  const param = str(e.param) ? { number: 'number', exp_month: 'expiry', exp_year: 'expiry', cvc: 'cvc', name: 'name', postal_code: 'postalCode' }[e.param.split(/[.[]/).pop()] : undefined;
  if (code !== 'network_error' && code !== 'rate_limited') fr.key = null;
  failed(id, code, param, str(e.message) ? e.message : undefined);
  if (param) peer({ t: 5, f: param });
}

function failed(id, code, field, vaultMessage) {
  const message = vaultMessage && !c.known(code) ? vaultMessage : c.message(code);
  post('tokenizeFailed', { id, error: Object.assign(field ? { field } : {}, { code, message }) });
  if (field) { c.submitted(); render(); }
}

function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

// Split fields: the group's channel (same origin only), never the page.
function peer(m) { if (fr.peers) fr.peers.postMessage(m); }
function onPeer(d) {
  if (!obj(d) || !Number.isInteger(d.t)) return;
  const own = F.indexOf(split);
  switch (d.t) {
    case 0: if (split === 'number') peer({ t: 1, x: fr.brand || undefined }); break;
    case 1: if (split !== 'number') { c.peer_brand(str(d.x) ? d.x : ''); render(); } break;
    case 2: if (split !== 'number' && str(d.n)) { c.submitted(); render(); peer({ t: 3, n: d.n, f: split, x: c.value_for_peer(own) }); } break;
    case 3: if (str(d.n) && str(d.x) && F.includes(d.f)) fr.collected = c.collect_accept(d.n, F.indexOf(d.f), d.x); break;
    case 4: if (F.includes(d.f) && F[F.indexOf(d.f) + 1] === split) els[own].input.focus(); break;
    case 5: c.submitted(); render(); if (d.f === split) els[own].input.focus(); break;
    case 6: if (split === 'cvc') { c.forget_cvc(); els[2].input.value = ''; render(); } break;
  }
}

export async function boot(module) {
  await init({ module_or_path: module });
  const [y, mo] = today();
  const s = c.start(location.hash, langs(), y, mo);
  if (s === undefined) throw new Error('bad frame parameters');
  p = s.split(US);
  [channel, origin] = p;
  split = p[4] || null;
  key = (/[?&]key=([A-Za-z0-9_]+)/.exec(location.search) || [])[1] || '';
  fr = { locale: [p[2], p[3], '1'], placeholders: [], labels: [], ariaLabels: [], showLabels: false, disabled: false, style: {}, theme: [], ruleProps: [], masked: [0, 0, 0, 0, 0], warning: [], hover: -1 };
  els.forEach((el, i) => ['beforeinput', 'input', 'compositionend', 'focus', 'blur', 'keydown', 'mouseenter', 'mouseleave'].forEach((t) => el.input.addEventListener(t, (e) => onField(i, e))));
  form.addEventListener('submit', (e) => e.preventDefault());
  if (split) {
    fr.peers = new BroadcastChannel('af-' + p[5]);
    fr.peers.onmessage = (e) => onPeer(e.data);
    peer({ t: 0 });
  }
  new ResizeObserver(height).observe(form);
  post('hello');
}
