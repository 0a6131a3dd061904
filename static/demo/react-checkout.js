// The React checkout (react.html): @altafinex/js's <CardElement> under React.StrictMode, with
// React from its UMD builds and the package as ES modules from /pkg/ (no bundler). With a
// bundler, import { AltafinexProvider, CardElement } from '@altafinex/js/react' instead.
import { loadAltafinex } from '/pkg/index.js';
import { createReactBinding } from '/pkg/react-binding.js';

const React = window.React;
const h = React.createElement;
const { AltafinexProvider, CardElement } = createReactBinding(React);

const app = document.getElementById('app');
// The loader this page pins: the versioned URL and SRI from the vault's manifest, filled in by
// the merchant server (a build would copy them from /v1/loader-manifest.json).
const load = {
  vaultOrigin: app.dataset.vault,
  loader: { url: new URL(app.dataset.loaderSrc).pathname, integrity: app.dataset.loaderIntegrity },
};

function Checkout() {
  const [card, setCard] = React.useState(null);
  const [complete, setComplete] = React.useState(false);
  const [result, setResult] = React.useState('');
  async function pay(event) {
    event.preventDefault();
    try {
      const { token, card: meta } = await card.tokenize();
      setResult(`${meta.brand} •••• ${meta.last4} → ${token}`);
    } catch (err) {
      setResult(err.message);
    }
  }
  return h('form', { id: 'checkout', onSubmit: pay, noValidate: true },
    h('label', { id: 'card-label' }, 'Card'),
    h(CardElement, {
      id: 'card-element',
      className: 'card-element',
      options: { key: app.dataset.key, errors: 'frame' },
      onElement: setCard,
      onChange: (state) => setComplete(state.complete),
      onSubmit: () => document.getElementById('pay').click(),
    }),
    h('button', { id: 'pay', type: 'submit', disabled: !card || !complete }, 'Pay € 24.00'),
    h('p', { id: 'status', className: 'status', 'aria-live': 'polite' }, card ? result || 'Ready.' : 'Loading the card form…'));
}

// Optional: loading before the first render lets <CardElement> mount in its first effect (so
// StrictMode's mount → unmount → mount really runs on the card element); without it the
// element mounts once the loader arrives.
await loadAltafinex(load);
const root = window.ReactDOM.createRoot(document.getElementById('root'));
root.render(h(React.StrictMode, null, h(AltafinexProvider, { options: load }, h(Checkout))));
// For the browser test: unmounting must remove the iframe and the loader's listener.
window.__checkout = { unmount: () => root.unmount() };
