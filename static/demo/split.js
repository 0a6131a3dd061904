// Demo checkout with split fields: one card frame per field, laid out by the page
// (docs/split-fields.md). External file on purpose: the page's CSP has no 'unsafe-inline'.
// `?postal=1` adds the postal code field.
(function () {
  'use strict';
  var record = window.__demo;
  var $ = function (id) { return document.getElementById(id); };
  var status = function (text) { $('status').textContent = text; };
  var key = document.querySelector('meta[name="altafinex-key"]').content;
  var names = ['number', 'expiry', 'cvc'];
  if (new URLSearchParams(location.search).get('postal') === '1') {
    names.push('postalCode');
    $('postal-wrap').hidden = false;
  }

  var card = window.Altafinex.card({ key: key, errors: 'none' });
  record.card = card;
  record.fieldEvents = [];
  ['ready', 'change', 'focus', 'blur', 'submit', 'brand', 'autofill', 'escape'].forEach(function (type) {
    card.on(type, function (payload) {
      record.events.push({ type: type, payload: payload === undefined ? null : payload, at: performance.timeOrigin + performance.now() });
    });
  });
  card.on('change', function (state) {
    $('card-errors').textContent = state.error ? state.error.message : '';
    $('pay').disabled = !state.complete;
  });
  card.on('submit', function () { pay(); });

  // Each field element has its own events, as the whole card has.
  record.fields = {};
  names.forEach(function (name) {
    var field = (record.fields[name] = card.field(name));
    ['ready', 'change', 'focus', 'blur', 'escape', 'autofill'].forEach(function (type) {
      field.on(type, function (payload) { record.fieldEvents.push({ field: name, type: type, payload: payload }); });
    });
  });

  Promise.all(names.map(function (name) { return card.field(name).mount('#card-' + name); })).then(function () {
    record.mounted = true;
    status('');
  }, function (err) {
    record.mountError = { code: err && err.code, message: err && err.message };
    status('The card fields could not be loaded: ' + (err && err.message));
  });

  function pay() {
    status('Processing…');
    card.tokenize().then(function (result) {
      record.tokenized = result;
      $('token').textContent = result.token;
      $('masked').textContent = result.card.brand + ' •••• ' + result.card.last4;
      $('result').hidden = false;
      status('Token created.');
    }, function (err) {
      record.tokenizeError = err;
      $('card-errors').textContent = err.message;
      status('');
    });
  }

  $('checkout').addEventListener('submit', function (event) {
    event.preventDefault();
    pay();
  });
})();
