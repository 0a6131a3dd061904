// Records every `message` event this page receives and every CSP violation, so the
// end-to-end tests can check that nothing the parent ever saw carried a PAN or a CVC.
// Loaded before the vault's loader so that no message is missed.
(function () {
  'use strict';
  var record = (window.__demo = window.__demo || { messages: [], events: [], cspViolations: [] });
  window.addEventListener('message', function (event) {
    var data;
    try {
      data = JSON.stringify(event.data);
    } catch (e) {
      data = String(event.data);
    }
    var frame = document.querySelector('#card-element iframe');
    record.messages.push({
      origin: event.origin,
      fromCardFrame: !!frame && event.source === frame.contentWindow,
      data: data === undefined ? 'undefined' : data,
      at: performance.timeOrigin + performance.now()
    });
  }, true);
  document.addEventListener('securitypolicyviolation', function (event) {
    record.cspViolations.push({
      directive: event.violatedDirective,
      blocked: event.blockedURI,
      source: event.sourceFile
    });
  });
})();
