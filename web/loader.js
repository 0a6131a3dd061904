/*! Altafinex card loader, protocol v1 */
(function (win, doc) {
  'use strict';
  if (win.Altafinex && win.Altafinex.card) return;

  var script = doc.currentScript;
  var scriptOrigin = script && script.src ? new URL(script.src, doc.baseURI).origin : null;
  var EVENTS = ['ready', 'change', 'focus', 'blur', 'submit', 'brand', 'warning', 'escape', 'autofill', 'loaderror'];
  var STATES = ['focused', 'autofilled', 'invalid', 'complete', 'empty'];
  var FIELDS = ['number', 'expiry', 'cvc', 'name', 'postalCode'];

  function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  function declarations(input) {
    var out = {};
    for (var k in isObject(input) ? input : {}) {
      var v = input[k];
      if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
    }
    return out;
  }
  function normalizeStyle(style) {
    var out = {};
    for (var k in isObject(style) ? style : {}) {
      if (isObject(style[k])) out[k] = declarations(style[k]);
    }
    if (out.base && isObject(style.base['::placeholder'])) out.placeholder = declarations(style.base['::placeholder']);
    return out;
  }
  // The options init and update() share, normalised into c.
  function options(o, c) {
    if (typeof o.locale === 'string') c.locale = o.locale;
    if ('style' in o) c.style = normalizeStyle(o.style);
    if ('appearance' in o) c.appearance = declarations(isObject(o.appearance) ? o.appearance.variables : 0);
    ['placeholders', 'label', 'ariaLabel'].forEach(function (k) { if (k in o) c[k] = declarations(o[k]); });
    ['disabled', 'showLabels'].forEach(function (k) { if (k in o) c[k] = o[k] === true; });
    return c;
  }

  function card(opts) {
    opts = opts || {};
    var key = opts.key;
    if (typeof key !== 'string' || !/^pk_(test|live)_[A-Za-z0-9_]+$/.test(key)) {
      throw new TypeError('Altafinex.card: key must be pk_test_... or pk_live_...');
    }
    var vault = opts.vaultOrigin ? new URL(opts.vaultOrigin).origin : scriptOrigin;
    if (!vault || vault === 'null') {
      throw new TypeError('Altafinex.card: pass vaultOrigin');
    }
    var fields = isObject(opts.fields) ? opts.fields : {};
    var messages = declarations(opts.messages);
    var init = options(opts, {
      type: 'init',
      locale: 'auto',
      fields: { name: fields.name === true, postalCode: fields.postalCode === true },
      errors: opts.errors === 'none' ? 'none' : 'frame',
      messages: messages,
      fonts: opts.fonts
    });
    var title = typeof opts.title === 'string' ? opts.title : 'Secure card payment input';
    var handlers = {};
    var channel, iframe, host, lastState, mounting, settle;
    // idle -> mounting -> ready | failed (docs/loader.md)
    var status = 'idle';
    var destroyed = false;
    var pending = {};
    var seq = 0;

    var DESTROYED = 'This card element was destroyed.';
    function failure(code, message, field) {
      var e = { code: code, message: messages[code] || message };
      if (field) e.field = field;
      return e;
    }

    function reset() {
      EVENTS.forEach(function (e) { handlers[e] = []; });
    }
    reset();

    function send(message) {
      message.v = 1;
      message.channel = channel;
      if (iframe && iframe.contentWindow) iframe.contentWindow.postMessage(message, vault);
    }

    function emit(name, payload) {
      handlers[name].slice().forEach(function (handler) {
        try {
          handler(payload);
        } catch (e) {
          setTimeout(function () { throw e; });
        }
      });
    }

    // State classes on the merchant's container (is-focused, is-invalid, ...); none without s.
    function mark(s) {
      var f = s ? s.fields : {};
      var on = { invalid: s && s.error, complete: s && s.complete, empty: s && s.empty };
      for (var k in f) {
        if (f[k].focused) on.focused = 1;
        if (f[k].autofilled) on.autofilled = 1;
      }
      STATES.forEach(function (n) { host.classList.toggle('is-' + n, !!on[n]); });
    }

    function size(height) {
      if (typeof height === 'number' && height > 0 && height < 5000) {
        iframe.style.height = Math.ceil(height) + 'px';
      }
    }

    function onMessage(event) {
      if (!iframe || event.source !== iframe.contentWindow || event.origin !== vault) return;
      var d = event.data;
      if (!isObject(d) || d.v !== 1 || d.channel !== channel || typeof d.type !== 'string') return;
      switch (d.type) {
        case 'hello':
          send(JSON.parse(JSON.stringify(init)));
          break;
        case 'ready':
          size(d.height);
          mark(lastState = d.state || null);
          if (status !== 'ready') {
            status = 'ready';
            mounting = Promise.resolve(api);
            emit('ready', lastState);
            if (settle) settle(null);
          }
          break;
        case 'resize':
          size(d.height);
          break;
        case 'change':
          mark(lastState = d.state || null);
          emit('change', lastState);
          break;
        case 'focus':
        case 'blur':
        case 'escape':
        case 'autofill':
          if (FIELDS.indexOf(d.field) >= 0) emit(d.type, { field: d.field });
          break;
        case 'submit':
          emit('submit', {});
          break;
        case 'brand':
          emit('brand', { brand: typeof d.brand === 'string' ? d.brand : null });
          break;
        case 'warning':
          var w = { code: String(d.code), message: String(d.message), properties: [].concat(d.properties).map(String) };
          if (!key.indexOf('pk_test_')) console.warn('Altafinex: ' + w.message);
          emit('warning', w);
          break;
        case 'tokenized':
        case 'tokenizeFailed':
          var p = pending[d.id];
          if (!p) return;
          delete pending[d.id];
          clearTimeout(p.timer);
          if (d.type === 'tokenized') {
            p.resolve({ token: d.token, card: d.card, expiresAt: d.expiresAt });
          } else {
            var e = isObject(d.error) ? d.error : {};
            p.reject(failure(String(e.code || 'processing_error'), String(e.message || ''), e.field));
          }
          break;
      }
    }

    function teardown() {
      var error = failure('destroyed', DESTROYED);
      win.removeEventListener('message', onMessage);
      if (iframe && iframe.parentNode) iframe.parentNode.removeChild(iframe);
      if (host) mark(null);
      iframe = lastState = null;
      if (settle) settle(error);
      Object.keys(pending).forEach(function (id) {
        clearTimeout(pending[id].timer);
        pending[id].reject(error);
      });
      pending = {};
      status = 'idle';
    }

    function check(name) {
      if (EVENTS.indexOf(name) < 0) throw new TypeError('Altafinex: unknown event "' + name + '"');
    }

    var api = {
      mount: function (target) {
        if (status === 'mounting' || status === 'ready') return mounting;
        var el = typeof target === 'string' ? doc.querySelector(target) : target;
        if (!el || typeof el.appendChild !== 'function') {
          return Promise.reject(failure('mount_target_not_found', 'No element matches the mount target.'));
        }
        teardown();
        host = el;
        destroyed = false;
        status = 'mounting';
        channel = Array.from(win.crypto.getRandomValues(new Uint8Array(16)), function (b) {
          return (b + 256).toString(16).slice(1);
        }).join('');
        var f = (iframe = doc.createElement('iframe'));
        f.title = title;
        f.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms');
        f.setAttribute('scrolling', 'no');
        f.style.cssText = 'border:0;margin:0;padding:0;width:100%;height:48px;display:block;background:transparent';
        f.src = vault + '/v1/frame?key=' + encodeURIComponent(key) + '#v=1&channel=' + channel +
          '&origin=' + encodeURIComponent(win.location.origin) + '&locale=' + encodeURIComponent(init.locale);
        win.addEventListener('message', onMessage);
        mounting = new Promise(function (resolve, reject) {
          var timer = setTimeout(function () {
            settle(failure('mount_timeout', 'The card frame did not load.'));
          }, 15000);
          settle = function (error) {
            clearTimeout(timer);
            settle = null;
            if (error) {
              if (status === 'mounting') status = 'failed';
              if (error.code !== 'destroyed') emit('loaderror', error);
              reject(error);
            } else resolve(api);
          };
        });
        // A page refused by the frame's CSP still fires `load`.
        f.addEventListener('load', function () {
          setTimeout(function () {
            if (f === iframe && settle) settle(failure('frame_refused', 'The card frame was refused for this page.'));
          }, 5000);
        });
        host.appendChild(f);
        return mounting;
      },
      on: function (name, handler) {
        check(name);
        if (typeof handler === 'function') handlers[name].push(handler);
        return api;
      },
      off: function (name, handler) {
        check(name);
        handlers[name] = handler ? handlers[name].filter(function (h) { return h !== handler; }) : [];
        return api;
      },
      state: function () {
        return lastState;
      },
      tokenize: function () {
        if (status !== 'ready') {
          return Promise.reject(destroyed ? failure('destroyed', DESTROYED) : failure('not_ready', 'Call mount() first.'));
        }
        return new Promise(function (resolve, reject) {
          var id = 't' + (++seq);
          pending[id] = {
            resolve: resolve,
            reject: reject,
            timer: setTimeout(function () {
              delete pending[id];
              reject(failure('timeout', 'The card frame did not answer in time.'));
            }, 30000)
          };
          send({ type: 'tokenize', id: id });
        });
      },
      focus: function (field) {
        if (iframe) iframe.focus();
        send({ type: 'focus', field: FIELDS.indexOf(field) >= 0 ? field : 'number' });
      },
      clear: function (field) {
        if (field !== undefined && FIELDS.indexOf(field) < 0) throw new TypeError('Altafinex: unknown field "' + field + '"');
        send(field === undefined ? { type: 'clear' } : { type: 'clear', field: field });
      },
      blur: function () {
        send({ type: 'blur' });
      },
      update: function (o) {
        var u = options(isObject(o) ? o : {}, {});
        for (var k in u) init[k] = u[k];
        u.type = 'update';
        send(u);
        return api;
      },
      destroy: function () {
        teardown();
        destroyed = true;
        reset();
      }
    };
    return api;
  }

  win.Altafinex = { card: card, version: '1' };
})(window, document);
