// @altafinex/js/react: the React binding over the 'react' your bundler resolves (18 or later).
// Without a bundler, import `createReactBinding` from './react-binding.js' and pass your React.
import * as ns from 'react';
import { createReactBinding } from './react-binding.js';

// React ships CommonJS: Node's ESM and some bundlers give its exports as the namespace's
// `default`, others as named exports.
const React = ns.default && typeof ns.default.createElement === 'function' ? ns.default : ns;

export { createReactBinding };
export const {
  AltafinexProvider,
  useAltafinex,
  useCardElement,
  CardElement,
  CardFields,
  CardNumberField,
  CardExpiryField,
  CardCvcField,
  CardNameField,
  CardPostalCodeField,
  useCardFields,
  useCardFieldElement,
} = createReactBinding(React);
