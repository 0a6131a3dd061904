// TypeScript declarations of @altafinex/js/react.
import type { ReactBinding } from './react-binding';

export * from './react-binding';
export declare const AltafinexProvider: ReactBinding['AltafinexProvider'];
export declare const useAltafinex: ReactBinding['useAltafinex'];
export declare const useCardElement: ReactBinding['useCardElement'];
export declare const CardElement: ReactBinding['CardElement'];
