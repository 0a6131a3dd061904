/*! Altafinex card loader, protocol v1. Docs: docs/loader.md */
(function (win, doc) {
  'use strict';
  if (win.Altafinex && win.Altafinex.card) return;

  var script = doc.currentScript;
  var scriptOrigin = script && script.src ? new URL(script.src, doc.baseURI).origin : null;
  var EVENTS = ['ready', 'change', 'focus', 'blur', 'submit', 'brand'];
  var FIELDS = ['number', 'expiry', 'cvc', 'name', 'postalCode'];
  var VARIANTS = ['base', 'focus', 'invalid', 'complete', 'empty', 'placeholder'];
  var MOUNT_TIMEOUT = 15000;
  var TOKENIZE_TIMEOUT = 30000;

  function failure(code, message, field) {
    var e = { code: code, message: message };
    if (field) e.field = field;
    return e;
  }

  function randomId() {
    var bytes = new Uint8Array(16);
    win.crypto.getRandomValues(bytes);
    var s = '';
    for (var i = 0; i < bytes.length; i++) s += (bytes[i] + 256).toString(16).slice(1);
    return s;
  }

  function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  }

  // Shape only ({ fontSize: 16 } -> '16', base['::placeholder'] -> placeholder); the frame
  // enforces the property allowlist and rejects unsafe values.
  function declarations(input) {
    var out = {};
    for (var k in input) {
      var v = input[k];
      if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
    }
    return out;
  }
  function normalizeStyle(style) {
    var out = {};
    if (!isObject(style)) return out;
    VARIANTS.forEach(function (name) {
      if (isObject(style[name])) out[name] = declarations(style[name]);
    });
    if (isObject(style.base) && isObject(style.base['::placeholder'])) {
      out.placeholder = declarations(style.base['::placeholder']);
    }
    return out;
  }
  function pickStrings(input, keys) {
    var out = {};
    if (isObject(input)) {
      keys.forEach(function (k) {
        if (typeof input[k] === 'string') out[k] = input[k];
      });
    }
    return out;
  }

  function card(options) {
    options = options || {};
    var key = options.key;
    if (typeof key !== 'string' || !/^pk_(test|live)_[A-Za-z0-9_]+$/.test(key)) {
      throw new TypeError('Altafinex.card: options.key must be a publishable key (pk_test_... or pk_live_...)');
    }
    var vault = options.vaultOrigin ? new URL(options.vaultOrigin).origin : scriptOrigin;
    if (!vault || vault === 'null') {
      throw new TypeError('Altafinex.card: cannot tell the vault origin; pass options.vaultOrigin');
    }
    var locale = typeof options.locale === 'string' ? options.locale : 'auto';
    var fields = isObject(options.fields) ? options.fields : {};
    var init = {
      type: 'init',
      locale: locale,
      style: normalizeStyle(options.style),
      placeholders: pickStrings(options.placeholders, FIELDS),
      fields: { name: fields.name === true, postalCode: fields.postalCode === true }
    };
    var title = typeof options.title === 'string' ? options.title : 'Secure card payment input';
    var channel = randomId();
    var handlers = {};
    EVENTS.forEach(function (e) { handlers[e] = []; });
    var iframe = null;
    var lastState = null;
    var ready = false;
    var destroyed = false;
    var mounting = null;
    var settleMount = null;
    var pending = {};
    var seq = 0;

    function send(message) {
      if (!iframe || !iframe.contentWindow) return false;
      message.v = 1;
      message.channel = channel;
      iframe.contentWindow.postMessage(message, vault);
      return true;
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
          lastState = d.state || null;
          if (!ready) {
            ready = true;
            emit('ready', lastState);
            if (settleMount) settleMount(null);
          }
          break;
        case 'resize':
          size(d.height);
          break;
        case 'change':
          lastState = d.state || null;
          emit('change', lastState);
          break;
        case 'focus':
        case 'blur':
          if (FIELDS.indexOf(d.field) >= 0) emit(d.type, { field: d.field });
          break;
        case 'submit':
          emit('submit', {});
          break;
        case 'brand':
          emit('brand', { brand: typeof d.brand === 'string' ? d.brand : null });
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

    var api = {
      mount: function (target) {
        if (destroyed) return Promise.reject(failure('destroyed', 'This card element was destroyed.'));
        if (mounting) return mounting;
        var host = typeof target === 'string' ? doc.querySelector(target) : target;
        if (!host || typeof host.appendChild !== 'function') {
          return Promise.reject(failure('mount_target_not_found', 'No element matches the mount target.'));
        }
        iframe = doc.createElement('iframe');
        iframe.title = title;
        iframe.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms');
        iframe.setAttribute('scrolling', 'no');
        iframe.style.cssText = 'border:0;margin:0;padding:0;width:100%;height:48px;display:block;overflow:hidden;background:transparent';
        var hash = 'v=1&channel=' + channel + '&origin=' + encodeURIComponent(win.location.origin) +
          '&locale=' + encodeURIComponent(locale);
        iframe.src = vault + '/v1/frame?key=' + encodeURIComponent(key) + '#' + hash;
        win.addEventListener('message', onMessage);
        mounting = new Promise(function (resolve, reject) {
          var timer = setTimeout(function () {
            settleMount(failure('mount_timeout', 'The card frame did not load.'));
          }, MOUNT_TIMEOUT);
          settleMount = function (error) {
            clearTimeout(timer);
            settleMount = null;
            if (error) reject(error); else resolve(api);
          };
        });
        // A page refused by the frame's CSP (origin not allowed for the key) still fires `load`.
        iframe.addEventListener('load', function () {
          setTimeout(function () {
            if (settleMount) settleMount(failure('frame_refused', 'The card frame was refused for this page.'));
          }, 5000);
        });
        host.appendChild(iframe);
        return mounting;
      },
      on: function (name, handler) {
        if (!handlers[name]) throw new TypeError('Altafinex: unknown event "' + name + '"');
        if (typeof handler === 'function') handlers[name].push(handler);
        return api;
      },
      off: function (name, handler) {
        if (!handlers[name]) return api;
        handlers[name] = handler ? handlers[name].filter(function (h) { return h !== handler; }) : [];
        return api;
      },
      state: function () {
        return lastState;
      },
      tokenize: function () {
        if (destroyed) return Promise.reject(failure('destroyed', 'This card element was destroyed.'));
        if (!ready) return Promise.reject(failure('not_ready', 'Call mount() and wait for it first.'));
        return new Promise(function (resolve, reject) {
          var id = 't' + (++seq);
          pending[id] = {
            resolve: resolve,
            reject: reject,
            timer: setTimeout(function () {
              delete pending[id];
              reject(failure('timeout', 'The card frame did not answer in time.'));
            }, TOKENIZE_TIMEOUT)
          };
          send({ type: 'tokenize', id: id });
        });
      },
      focus: function (field) {
        if (!iframe) return;
        iframe.focus();
        send({ type: 'focus', field: FIELDS.indexOf(field) >= 0 ? field : 'number' });
      },
      clear: function () {
        send({ type: 'clear' });
      },
      destroy: function () {
        if (destroyed) return;
        destroyed = true;
        win.removeEventListener('message', onMessage);
        if (iframe && iframe.parentNode) iframe.parentNode.removeChild(iframe);
        iframe = null;
        if (settleMount) settleMount(failure('destroyed', 'This card element was destroyed.'));
        Object.keys(pending).forEach(function (id) {
          clearTimeout(pending[id].timer);
          pending[id].reject(failure('destroyed', 'This card element was destroyed.'));
        });
        pending = {};
        EVENTS.forEach(function (e) { handlers[e] = []; });
      }
    };
    return api;
  }

  win.Altafinex = { card: card, version: '1' };
})(window, document);
