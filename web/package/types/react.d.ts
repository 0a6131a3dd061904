// TypeScript declarations of @altafinex/js/react.
import type { ReactBinding } from './react-binding';

export * from './react-binding';
export declare const AltafinexProvider: ReactBinding['AltafinexProvider'];
export declare const useAltafinex: ReactBinding['useAltafinex'];
export declare const useCardElement: ReactBinding['useCardElement'];
export declare const CardElement: ReactBinding['CardElement'];
export declare const CardFields: ReactBinding['CardFields'];
export declare const CardNumberField: ReactBinding['CardNumberField'];
export declare const CardExpiryField: ReactBinding['CardExpiryField'];
export declare const CardCvcField: ReactBinding['CardCvcField'];
export declare const CardNameField: ReactBinding['CardNameField'];
export declare const CardPostalCodeField: ReactBinding['CardPostalCodeField'];
export declare const useCardFields: ReactBinding['useCardFields'];
export declare const useCardFieldElement: ReactBinding['useCardFieldElement'];
