// Demo checkout: how a merchant page uses the Altafinex loader.
// External file on purpose: the page's CSP has no 'unsafe-inline'.
(function () {
  'use strict';
  var record = window.__demo;
  var params = new URLSearchParams(location.search);
  var styled = params.get('theme') === 'styled';
  var meta = function (name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.content : '';
  };
  var $ = function (id) { return document.getElementById(id); };
  var status = function (text) { $('status').textContent = text; };

  if (styled) document.documentElement.classList.add('styled');

  if (!window.Altafinex || typeof window.Altafinex.card !== 'function') {
    record.mountError = { code: 'loader_missing', message: 'loader.js did not load from ' + meta('altafinex-vault') };
    status('Could not load the card form (is the vault running, and its certificate accepted?)');
    return;
  }

  // The styled variant passes a `style` option; the default keeps the frame's own look.
  var style = styled ? {
    base: {
      color: '#1d1b3a', fontFamily: 'Georgia, "DejaVu Serif", serif', fontSize: '17px',
      letterSpacing: '0.04em', lineHeight: '1.6'
    },
    focus: { color: '#3b2db3' },
    placeholder: { color: '#8a86b0' },
    invalid: { color: '#c2185b' },
    complete: { color: '#00796b' }
  } : undefined;

  var options = { key: meta('altafinex-key') };
  if (style) options.style = style;
  // This page shows the card error itself (#card-errors), so the frame's own text is turned
  // off, or the cardholder would read it twice. `?errors=frame` shows the frame's instead.
  options.errors = params.get('errors') === 'frame' ? 'frame' : 'none';
  if (params.get('locale')) options.locale = params.get('locale');

  var card = window.Altafinex.card(options);
  record.card = card;

  ['ready', 'change', 'focus', 'blur', 'submit', 'brand'].forEach(function (type) {
    card.on(type, function (payload) {
      record.events.push({ type: type, payload: payload === undefined ? null : payload, at: performance.timeOrigin + performance.now() });
    });
  });

  card.on('change', function (state) {
    if (options.errors === 'frame') return;
    $('card-errors').textContent = state && state.error ? state.error.message : '';
    $('pay').disabled = !(state && state.complete);
  });
  card.on('submit', function () { pay(); });

  var t0 = performance.now();
  card.mount('#card-element').then(function () {
    record.mountedMs = performance.now() - t0;
    record.mounted = true;
    status('');
  }, function (err) {
    record.mountError = { code: err && err.code, message: err && err.message };
    status('The card form could not be loaded: ' + (err && err.message ? err.message : err));
  });

  var busy = false;
  function pay() {
    if (busy) return;
    busy = true;
    $('pay').disabled = true;
    status('Processing…');
    card.tokenize().then(function (result) {
      record.tokenized = result;
      var m = result.card;
      $('token').textContent = result.token;
      $('masked').textContent = (m.brand || 'card') + ' •••• ' + m.last4 + '  ' + String(m.expMonth).padStart(2, '0') + '/' + m.expYear;
      $('expires').textContent = result.expiresAt;
      $('result').hidden = false;
      $('server-view').textContent = 'Asking the merchant server…';
      status('Token created. The merchant server now reads it from the vault.');
      return fetch('/api/server-view', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ token: result.token })
      }).then(function (res) { return res.json(); }).then(function (view) {
        record.serverView = view;
        $('server-view').textContent = JSON.stringify(view, null, 2);
        status('Done: the merchant server read the token with its secret key.');
      });
    }, function (err) {
      record.tokenizeError = err;
      $('card-errors').textContent = err && err.message ? err.message : String(err);
      status('');
    }).catch(function (err) {
      record.serverViewError = String(err);
      status('The merchant server could not read the token: ' + err);
    }).then(function () {
      busy = false;
      var s = card.state();
      $('pay').disabled = !(s && s.complete);
    });
  }

  $('checkout').addEventListener('submit', function (event) {
    event.preventDefault();
    pay();
  });
})();
