// The React checkout with split fields (react-split.html): @altafinex/js's <CardFields> with one
// component per field under React.StrictMode, React from its UMD builds and the package as ES
// modules from /pkg/ (no bundler). With a bundler, import the same names from
// '@altafinex/js/react'. `?postal=1` adds the postal code field.
import { loadAltafinex } from '/pkg/index.js';
import { createReactBinding } from '/pkg/react-binding.js';

const React = window.React;
const h = React.createElement;
const { AltafinexProvider, CardFields, CardNumberField, CardExpiryField, CardCvcField, CardPostalCodeField, useCardFields } =
  createReactBinding(React);

const app = document.getElementById('app');
const load = {
  vaultOrigin: app.dataset.vault,
  loader: { url: new URL(app.dataset.loaderSrc).pathname, integrity: app.dataset.loaderIntegrity },
};
const withPostalCode = new URLSearchParams(location.search).get('postal') === '1';

/** A label and the field's container (the loader's is-focused, is-invalid… classes land on it). */
function Labelled(props) {
  return h('div', null, h('label', { id: `${props.id}-label` }, props.label), ...[].concat(props.children));
}

/** Inside <CardFields>: the pay button and the result, from useCardFields(). */
function PayButton(props) {
  const { ready, state, error, tokenize } = useCardFields();
  const [result, setResult] = React.useState('');
  async function pay() {
    props.setBusy(true);
    try {
      const { token, card } = await tokenize();
      setResult(`${card.brand} •••• ${card.last4} → ${token}`);
    } catch (err) {
      setResult(err.message);
    } finally {
      props.setBusy(false);
    }
  }
  const status = error ? `The card fields could not be loaded: ${error.message}` : ready ? result || 'Ready.' : 'Loading the card fields…';
  return h(React.Fragment, null,
    h('p', { id: 'card-errors', className: 'errors', role: 'alert' }, state && state.error ? state.error.message : ''),
    h('button', { id: 'pay', type: 'submit', disabled: !ready || props.busy || !(state && state.complete), onClick: (e) => { e.preventDefault(); void pay(); } }, 'Pay € 24.00'),
    h('p', { id: 'status', className: 'status', 'aria-live': 'polite' }, status));
}

function Checkout() {
  // While the payment runs the fields are disabled: update() in every field frame, no remount.
  const [busy, setBusy] = React.useState(false);
  const [focused, setFocused] = React.useState('');
  const [brand, setBrand] = React.useState(null);
  return h('form', { id: 'checkout', noValidate: true, 'data-focused': focused },
    h(CardFields, {
      options: { key: app.dataset.key, errors: 'none', disabled: busy },
      onFocus: (e) => setFocused(e.field),
      // Frames report focus and blur independently: a late blur of the previous field keeps the new one.
      onBlur: (e) => setFocused((f) => (f === e.field ? '' : f)),
    },
      h(Labelled, { id: 'number', label: 'Card number' },
        h('span', { id: 'brand', className: 'note' }, brand || ''),
        // A field's own events: the number field's brand.
        h(CardNumberField, { id: 'card-number', className: 'card-element', onBrand: (e) => setBrand(e.brand) })),
      h('div', { className: 'split-row' },
        h(Labelled, { id: 'expiry', label: 'Expiry' }, h(CardExpiryField, { id: 'card-expiry', className: 'card-element' })),
        h(Labelled, { id: 'cvc', label: 'CVC' }, h(CardCvcField, { id: 'card-cvc', className: 'card-element' })),
        withPostalCode
          ? h(Labelled, { id: 'postal', label: 'Postal code' }, h(CardPostalCodeField, { id: 'card-postalCode', className: 'card-element' }))
          : null),
      h(PayButton, { busy, setBusy })));
}

// Loading before the first render lets the fields mount in their first effects (so StrictMode's
// mount → unmount → mount really runs on them); without it they mount once the loader arrives.
await loadAltafinex(load);
const root = window.ReactDOM.createRoot(document.getElementById('root'));
root.render(h(React.StrictMode, null, h(AltafinexProvider, { options: load }, h(Checkout))));
// For the browser test: unmounting must remove the iframes and the loader's listeners.
window.__checkout = { unmount: () => root.unmount() };
