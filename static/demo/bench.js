// Benchmark page: mount() → ready for the card frame, next to a bare cross-origin iframe
// holding one plain <input>, measured alternately in the same page and browser.
(function () {
  'use strict';
  var meta = function (name) { return document.querySelector('meta[name="' + name + '"]').content; };
  var stage = document.getElementById('stage');
  var helloMs = [];

  function median(xs) {
    var s = xs.slice().sort(function (a, b) { return a - b; });
    var m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  function plainUrl() {
    var other = location.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
    return location.protocol + '//' + other + ':' + location.port + '/bench-plain.html';
  }

  function mountCard() {
    var box = document.createElement('div');
    stage.appendChild(box);
    var t0 = performance.now();
    var hello = null;
    // When the frame's document has booted (its `hello`), to split the total into
    // "iframe + HTML + JS + WASM start" and "init → render → ready".
    function onMessage(event) {
      var f = box.querySelector('iframe');
      if (hello === null && f && event.source === f.contentWindow && event.data && event.data.type === 'hello') {
        hello = performance.now() - t0;
      }
    }
    window.addEventListener('message', onMessage, true);
    var card = window.Altafinex.card({ key: meta('altafinex-key') });
    return card.mount(box).then(function () {
      var ms = performance.now() - t0;
      window.removeEventListener('message', onMessage, true);
      card.destroy();
      box.remove();
      helloMs.push(hello === null ? NaN : hello);
      return ms;
    });
  }

  function mountPlain() {
    return new Promise(function (resolve, reject) {
      var box = document.createElement('div');
      stage.appendChild(box);
      var frame = document.createElement('iframe');
      frame.title = 'plain';
      var t0 = performance.now();
      var timer = setTimeout(function () { reject(new Error('plain frame timed out')); }, 10000);
      function onMessage(event) {
        if (event.source !== frame.contentWindow || !event.data || event.data.type !== 'plain-ready') return;
        var ms = performance.now() - t0;
        clearTimeout(timer);
        window.removeEventListener('message', onMessage);
        box.remove();
        resolve(ms);
      }
      window.addEventListener('message', onMessage);
      frame.src = plainUrl();
      box.appendChild(frame);
    });
  }

  // Split fields: a card of three field frames (number, expiry, CVC), until all three are ready.
  function mountSplit() {
    var fields = ['number', 'expiry', 'cvc'];
    var boxes = fields.map(function () { var box = document.createElement('div'); stage.appendChild(box); return box; });
    var t0 = performance.now();
    var card = window.Altafinex.card({ key: meta('altafinex-key') });
    return Promise.all(fields.map(function (f, i) { return card.field(f).mount(boxes[i]); })).then(function () {
      var ms = performance.now() - t0;
      card.destroy();
      boxes.forEach(function (box) { box.remove(); });
      return ms;
    });
  }

  // Three bare iframes at once, until all three posted "ready" (the split card's baseline).
  function mountPlain3() {
    return Promise.all([mountPlain(), mountPlain(), mountPlain()]).then(function (ms) { return Math.max.apply(null, ms); });
  }

  function run(n) {
    var card = [], plain = [];
    helloMs = [];
    var chain = Promise.resolve();
    // One warm-up of each (first compile of the WASM module, first TLS handshake), not counted.
    chain = chain.then(mountCard).then(mountPlain).then(function () { helloMs = []; });
    for (var i = 0; i < n; i++) {
      chain = chain
        .then(mountCard).then(function (ms) { card.push(ms); })
        .then(mountPlain).then(function (ms) { plain.push(ms); });
    }
    return chain.then(function () {
      return { runs: n, cardMedianMs: median(card), plainMedianMs: median(plain), cardMs: card, plainMs: plain,
               helloMedianMs: median(helloMs), helloMs: helloMs };
    });
  }

  // One mount of either kind, for the harness's cold-cache runs (it clears the browser cache
  // between calls): resolves to { ms, helloMs }.
  function once(kind) {
    helloMs = [];
    var mount = { card: mountCard, plain: mountPlain, split: mountSplit, plain3: mountPlain3 }[kind];
    return mount().then(function (ms) { return { ms: ms, helloMs: kind === 'card' ? helloMs[0] : null }; });
  }

  window.__bench = { run: run, once: once };
  document.getElementById('run').addEventListener('click', function () {
    var out = document.getElementById('out');
    out.textContent = 'running…';
    run(20).then(function (r) {
      out.textContent = 'card mount→ready median ' + r.cardMedianMs.toFixed(1) + ' ms; bare iframe ' +
        r.plainMedianMs.toFixed(1) + ' ms (' + r.runs + ' runs each)';
    }, function (e) { out.textContent = String(e); });
  });
})();
