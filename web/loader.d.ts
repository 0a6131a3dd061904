// TypeScript declarations for the Altafinex card loader (GET /v1/loader.js), protocol v1.
// Contract: docs/loader.md.

export type CardBrand =
  | 'visa' | 'mastercard' | 'amex' | 'discover' | 'diners' | 'jcb' | 'unionpay' | 'maestro'
  | 'mir' | 'elo' | 'hiper' | 'hipercard' | 'troy' | 'verve';

export type CardField = 'number' | 'expiry' | 'cvc' | 'name' | 'postalCode';

export type Locale = 'auto' | 'en' | 'de' | 'fr' | 'es' | 'it' | 'nl' | 'pt' | 'ja' | string;

/** CSS declarations in camelCase or kebab-case; only allowlisted properties are applied. */
export type StyleDeclarations = { [property: string]: string | number };

export interface CardStyle {
  base?: StyleDeclarations & { '::placeholder'?: StyleDeclarations };
  focus?: StyleDeclarations;
  invalid?: StyleDeclarations;
  complete?: StyleDeclarations;
  empty?: StyleDeclarations;
  placeholder?: StyleDeclarations;
}

export interface CardOptions {
  /** Publishable key, `pk_test_...` or `pk_live_...`. */
  key: string;
  style?: CardStyle;
  /** A BCP 47 tag (`'de'`, `'pt-BR'`) or `'auto'` (the browser's languages). Default `'auto'`. */
  locale?: Locale;
  placeholders?: Partial<Record<CardField, string>>;
  /** Optional fields, both off by default. */
  fields?: { name?: boolean; postalCode?: boolean };
  /** Title of the iframe for assistive technology. */
  title?: string;
  /** Vault origin; defaults to the origin this script was loaded from. */
  vaultOrigin?: string;
}

export interface FieldState {
  empty: boolean;
  valid: boolean;
  potentiallyValid: boolean;
  focused: boolean;
}

export interface CardError {
  code: string;
  message: string;
  field?: CardField;
}

export interface ChangePayload {
  brand: CardBrand | null;
  complete: boolean;
  empty: boolean;
  fields: {
    number: FieldState;
    expiry: FieldState;
    cvc: FieldState;
    name?: FieldState;
    postalCode?: FieldState;
  };
  error: null | (CardError & { field: CardField });
}

export interface TokenResult {
  token: string;
  card: { brand: CardBrand; last4: string; expMonth: number; expYear: number };
  /** RFC 3339 time at which the token expires (24 h after creation). */
  expiresAt: string;
}

export interface CardEvents {
  ready: ChangePayload;
  change: ChangePayload;
  focus: { field: CardField };
  blur: { field: CardField };
  submit: Record<string, never>;
  brand: { brand: CardBrand | null };
}

export interface CardElement {
  /** Inserts the iframe into the element; resolves when the frame is ready. */
  mount(target: string | HTMLElement): Promise<CardElement>;
  on<E extends keyof CardEvents>(event: E, handler: (payload: CardEvents[E]) => void): CardElement;
  off<E extends keyof CardEvents>(event: E, handler?: (payload: CardEvents[E]) => void): CardElement;
  /** The last `change` payload (`null` before ready). */
  state(): ChangePayload | null;
  /** Rejects with a {@link CardError}. */
  tokenize(): Promise<TokenResult>;
  focus(field?: 'number' | 'expiry' | 'cvc' | 'name' | 'postalCode'): void;
  clear(): void;
  destroy(): void;
}

export interface AltafinexStatic {
  card(options: CardOptions): CardElement;
  version: '1';
}

declare global {
  interface Window {
    Altafinex: AltafinexStatic;
  }
  const Altafinex: AltafinexStatic;
}
