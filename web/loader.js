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
    // '' -> the single frame (card.mount); a field name -> that field's frame (card.field).
    var parts = {};
    var group;
    var pending = {};
    var seq = 0;

    var DESTROYED = 'This card element was destroyed.';
    function failure(code, message, field) {
      var e = { code: code, message: messages[code] || message };
      if (field) e.field = field;
      return e;
    }

    function reset(h) {
      EVENTS.forEach(function (e) { h[e] = []; });
      return h;
    }
    reset(handlers);

    function emit(h, name, payload) {
      h[name].slice().forEach(function (handler) {
        try {
          handler(payload);
        } catch (e) {
          setTimeout(function () { throw e; });
        }
      });
    }

    function check(name) {
      if (EVENTS.indexOf(name) < 0) throw new TypeError('Altafinex: unknown event "' + name + '"');
    }

    function rejectAll(error) {
      Object.keys(pending).forEach(function (id) {
        clearTimeout(pending[id].timer);
        pending[id].reject(error);
      });
      pending = {};
    }

    // Split fields: one ChangePayload from every field frame's own field (brand, bin and last4
    // from the number frame); the number, expiry and CVC are always listed.
    function merged() {
      var s = { brand: null, bin: null, last4: null, complete: true, empty: true, fields: {}, error: null };
      FIELDS.forEach(function (f, i) {
        var st = parts[f] && parts[f].state(), fs = st && st.fields[f];
        if (!fs && i > 2) return;
        s.fields[f] = fs = fs || { empty: true, valid: false, potentiallyValid: true, focused: false, autofilled: false };
        s.complete = s.complete && fs.valid;
        s.empty = s.empty && fs.empty;
        if (st && !s.error) s.error = st.error;
        if (i < 1 && st) {
          s.brand = st.brand;
          s.bin = st.bin;
          s.last4 = st.last4;
        }
      });
      return s;
    }

    function ready(f) {
      return parts[f] && parts[f].status() === 'ready';
    }

    // One iframe: the whole card (field '') or one field of a split card.
    function part(field) {
      var own = reset({});
      var channel, iframe, host, lastState, mounting, settle;
      // idle -> mounting -> ready | failed (docs/loader.md)
      var status = 'idle';

      function send(message) {
        message.v = 1;
        message.channel = channel;
        if (iframe && iframe.contentWindow) iframe.contentWindow.postMessage(message, vault);
      }

      function start() {
        send(JSON.parse(JSON.stringify(init)));
      }

      // The field element's own handlers, then the card's (split: the merged state).
      function fire(name, payload) {
        if (!field) return emit(handlers, name, payload);
        emit(own, name, payload);
        if (name === 'ready' && !Object.keys(parts).every(ready)) return;
        emit(handlers, name, name === 'ready' || name === 'change' ? merged() : payload);
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
          // `init` goes at the frame's `load` (the frame keeps what arrives before it has booted)
          // and again at `hello` (in case it was lost); the frame takes only the first.
          case 'hello':
            start();
            break;
          case 'ready':
            size(d.height);
            mark(lastState = d.state || null);
            if (status !== 'ready') {
              status = 'ready';
              mounting = Promise.resolve(me());
              fire('ready', lastState);
              if (settle) settle(null);
            }
            break;
          case 'resize':
            size(d.height);
            break;
          case 'change':
            mark(lastState = d.state || null);
            fire('change', lastState);
            break;
          case 'focus':
          case 'blur':
          case 'escape':
          case 'autofill':
            if (FIELDS.indexOf(d.field) >= 0) fire(d.type, { field: d.field });
            break;
          case 'submit':
            fire('submit', {});
            break;
          case 'brand':
            fire('brand', { brand: typeof d.brand === 'string' ? d.brand : null });
            break;
          case 'warning':
            var w = { code: String(d.code), message: String(d.message), properties: [].concat(d.properties).map(String) };
            if (!key.indexOf('pk_test_')) console.warn('Altafinex: ' + w.message);
            fire('warning', w);
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
        if (!field || field === 'number') rejectAll(error);
        status = 'idle';
      }

      // What mount() resolves to: the card element, or this field element.
      function me() {
        return field ? el : api;
      }

      var el = {
        mount: function (target) {
          if (status === 'mounting' || status === 'ready') return mounting;
          var node = typeof target === 'string' ? doc.querySelector(target) : target;
          if (!node || typeof node.appendChild !== 'function') {
            return Promise.reject(failure('mount_target_not_found', 'No element matches the mount target.'));
          }
          teardown();
          host = node;
          status = 'mounting';
          channel = hex();
          var f = (iframe = doc.createElement('iframe'));
          f.title = field ? title + ': ' + field : title;
          f.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms');
          f.setAttribute('scrolling', 'no');
          f.style.cssText = 'border:0;margin:0;padding:0;width:100%;height:48px;display:block;background:transparent';
          f.src = vault + '/v1/frame?key=' + encodeURIComponent(key) + '#v=1&channel=' + channel +
            '&origin=' + encodeURIComponent(win.location.origin) + '&locale=' + encodeURIComponent(init.locale) +
            (field ? '&field=' + field + '&group=' + group : '');
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
                if (error.code !== 'destroyed') fire('loaderror', error);
                reject(error);
              } else resolve(me());
            };
          });
          // A page refused by the frame's CSP still fires `load`.
          f.addEventListener('load', function () {
            if (f === iframe) start();
            setTimeout(function () {
              if (f === iframe && settle) settle(failure('frame_refused', 'The card frame was refused for this page.'));
            }, 5000);
          });
          host.appendChild(f);
          return mounting;
        },
        on: function (name, handler) {
          check(name);
          if (typeof handler === 'function') own[name].push(handler);
          return el;
        },
        off: function (name, handler) {
          check(name);
          own[name] = handler ? own[name].filter(function (h) { return h !== handler; }) : [];
          return el;
        },
        state: function () {
          return lastState;
        },
        status: function () {
          return status;
        },
        send: send,
        focus: function (name) {
          if (iframe) iframe.focus();
          send({ type: 'focus', field: field || (FIELDS.indexOf(name) >= 0 ? name : 'number') });
        },
        clear: function () {
          send(field ? { type: 'clear', field: field } : { type: 'clear' });
        },
        blur: function () {
          send({ type: 'blur' });
        },
        destroy: function () {
          teardown();
          reset(own);
        }
      };
      return el;
    }

    function hex() {
      return Array.from(win.crypto.getRandomValues(new Uint8Array(16)), function (b) {
        return (b + 256).toString(16).slice(1);
      }).join('');
    }

    function each(f) {
      for (var k in parts) f(parts[k]);
    }

    // card.mount() and card.field() are exclusive: the first call decides.
    function only(split) {
      if (split ? parts[''] : Object.keys(parts).length && !parts['']) {
        throw new TypeError('Altafinex: use either card.mount() or card.field(), not both');
      }
    }

    var destroyed = false;
    var api = {
      mount: function (target) {
        only(false);
        var p = (parts[''] = parts[''] || part(''));
        var mounted = p.mount(target);
        if (p.status() === 'mounting') destroyed = false;
        return mounted;
      },
      field: function (name) {
        if (FIELDS.indexOf(name) < 0) throw new TypeError('Altafinex: unknown field "' + name + '"');
        only(true);
        group = group || hex();
        return (parts[name] = parts[name] || part(name));
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
        return parts[''] ? parts[''].state() : parts.number ? merged() : null;
      },
      tokenize: function () {
        var leader = parts[''] || parts.number;
        for (var i = 0; i < 3 && group; i++) {
          var p = parts[FIELDS[i]];
          if (!p || p.status() === 'idle') {
            return Promise.reject(failure('incomplete_' + FIELDS[i], 'Mount the ' + FIELDS[i] + ' field first.', FIELDS[i]));
          }
        }
        if (!leader || !Object.keys(parts).every(ready)) {
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
          leader.send(parts[''] ? { type: 'tokenize', id: id } :
            { type: 'tokenize', id: id, fields: { name: !!parts.name, postalCode: !!parts.postalCode } });
        });
      },
      focus: function (field) {
        var p = parts[''] || parts[field] || parts.number;
        if (p) p.focus(field);
      },
      clear: function (field) {
        if (field !== undefined && FIELDS.indexOf(field) < 0) throw new TypeError('Altafinex: unknown field "' + field + '"');
        if (parts['']) parts[''].send(field === undefined ? { type: 'clear' } : { type: 'clear', field: field });
        else if (field) { if (parts[field]) parts[field].clear(); }
        else each(function (p) { p.clear(); });
      },
      blur: function () {
        each(function (p) { p.blur(); });
      },
      update: function (o) {
        var u = options(isObject(o) ? o : {}, {});
        for (var k in u) init[k] = u[k];
        u.type = 'update';
        each(function (p) { p.send(JSON.parse(JSON.stringify(u))); });
        return api;
      },
      destroy: function () {
        each(function (p) { p.destroy(); });
        rejectAll(failure('destroyed', DESTROYED));
        destroyed = true;
        reset(handlers);
      }
    };
    return api;
  }

  win.Altafinex = { card: card, version: '1' };
})(window, document);
