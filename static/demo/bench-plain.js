// The baseline frame: one plain <input>. It says "ready" the way the card frame does: a
// postMessage to its parent once its document is usable.
parent.postMessage({ type: 'plain-ready' }, '*');
