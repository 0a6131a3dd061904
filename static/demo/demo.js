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
        status('The merchant server read the token; now it charges it.');
        return charge(result.token);
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

  function postJson(path, body) {
    return fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (res) {
      return res.json().then(function (json) { return { ok: res.ok, status: res.status, body: json }; });
    });
  }

  function showPayment(p) {
    $('payment-id').textContent = p.id;
    $('payment-status').textContent = p.status + (p.declineCode ? ' (' + p.declineCode + ')' : '');
    $('payment-amount').textContent = p.display + ' ' + p.currency.toUpperCase() +
      (p.card ? ' · ' + p.card.brand + ' •••• ' + p.card.last4 : '');
    $('refund').disabled = p.status !== 'succeeded' || p.amountRefunded >= p.amount;
    $('payment').hidden = false;
  }

  // The merchant server charges the token with the SDK (its own Idempotency-Key per request).
  function charge(token) {
    return postJson('/api/pay', { token: token }).then(function (res) {
      record.payment = res.body;
      if (res.ok && res.body.declined) {
        var d = res.body.declined;
        record.paymentError = d;
        status('Card declined: ' + d.message + ' (' + d.declineCode + '). Try another card.');
        return;
      }
      if (!res.ok) {
        var e = res.body && res.body.error ? res.body.error : {};
        record.paymentError = e;
        status('Payment failed: ' + (e.message || res.status));
        return;
      }
      $('payment-idempotency').textContent = res.body.idempotencyKey;
      showPayment(res.body.payment);
      status('Paid. The vault now sends the merchant server signed webhooks.');
      pollWebhooks();
    });
  }

  $('refund').addEventListener('click', function () {
    var id = $('payment-id').textContent;
    $('refund').disabled = true;
    $('refund-status').textContent = 'Refunding…';
    postJson('/api/refund', { payment: id }).then(function (res) {
      record.refund = res.body;
      if (!res.ok) {
        $('refund-status').textContent = 'Refund refused: ' + (res.body && res.body.error ? res.body.error.message : res.status);
        $('refund').disabled = false;
        return;
      }
      var r = res.body.refund;
      $('payment-refunded').textContent = r.display + ' ' + r.currency.toUpperCase() + ' (' + r.id + ', ' + r.status + ')';
      $('refund-status').textContent = 'Refund ' + r.status + '.';
    }, function (err) {
      $('refund-status').textContent = 'Refund failed: ' + err;
      $('refund').disabled = false;
    });
  });

  var polling = false;
  function pollWebhooks() {
    if (polling) return;
    polling = true;
    $('webhooks').hidden = false;
    var tick = function () {
      fetch('/api/webhooks').then(function (res) { return res.json(); }).then(function (json) {
        var list = json.deliveries || [];
        record.webhooks = list;
        var ol = $('webhook-list');
        while (ol.firstChild) ol.removeChild(ol.firstChild);
        list.forEach(function (d) {
          var li = document.createElement('li');
          var o = d.object || {};
          li.textContent = d.type + ' · ' + (o.id || '') + ' · ' + (o.status || '') +
            ' · verified: ' + d.verified.join(' + ');
          ol.appendChild(li);
        });
      }).catch(function () { /* the next tick tries again */ }).then(function () {
        setTimeout(tick, 1000);
      });
    };
    tick();
  }

  $('checkout').addEventListener('submit', function (event) {
    event.preventDefault();
    pay();
  });
})();
