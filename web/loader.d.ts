// TypeScript declarations for the Altafinex card loader (GET /v1/loader.js), protocol v1.
// Contract: docs/loader.md.

export type CardBrand =
  | 'visa' | 'mastercard' | 'amex' | 'discover' | 'diners' | 'jcb' | 'unionpay' | 'maestro'
  | 'mir' | 'elo' | 'hiper' | 'hipercard' | 'troy' | 'verve';

export type CardField = 'number' | 'expiry' | 'cvc' | 'name' | 'postalCode';

/** `ar` and `he` are right-to-left (the card number, expiry and CVC stay left-to-right). */
export type Locale =
  | 'auto' | 'en' | 'de' | 'fr' | 'es' | 'it' | 'nl' | 'pt' | 'ja' | 'ar' | 'he' | 'zh' | 'ko'
  | 'pl' | 'sv' | 'da' | 'fi' | 'nb' | 'tr' | 'ru' | string;

/**
 * CSS declarations in camelCase or kebab-case; only allowlisted properties are applied (text,
 * and the input box: border, radius, background, box-shadow, outline, height, padding,
 * transition; docs/postmessage.md lists them). Numbers mean pixels for `fontSize`,
 * `letterSpacing`, the paddings, `height`, `minHeight`, `borderRadius`, `borderWidth`,
 * `outlineWidth` and `outlineOffset`, and stay unitless elsewhere (`lineHeight: 1.5`,
 * `fontWeight: 600`, `opacity: 0.8`).
 */
export type StyleDeclarations = { [property: string]: string | number };

/** The `base` variant, which may nest the placeholder's declarations as `'::placeholder'`. */
export type BaseStyle = { [property: string]: string | number | StyleDeclarations } & {
  '::placeholder'?: StyleDeclarations;
};

/** Variants, layered in this order (later wins): base, empty, complete, autofilled, invalid, hover, focus, disabled. */
export interface CardStyle {
  base?: BaseStyle;
  empty?: StyleDeclarations;
  complete?: StyleDeclarations;
  /** The browser's autofill filled the field (until the cardholder edits it). */
  autofilled?: StyleDeclarations;
  invalid?: StyleDeclarations;
  hover?: StyleDeclarations;
  focus?: StyleDeclarations;
  /** `disabled: true`. */
  disabled?: StyleDeclarations;
  placeholder?: StyleDeclarations;
}

/** Theme variables: CSS values (numbers mean pixels for the sizes), checked like style values. */
export interface AppearanceVariables {
  colorPrimary?: string;
  colorText?: string;
  colorDanger?: string;
  colorBackground?: string;
  colorBorder?: string;
  colorPlaceholder?: string;
  borderRadius?: string | number;
  spacingUnit?: string | number;
  fontSizeBase?: string | number;
  fontFamily?: string;
}

export interface Appearance {
  variables?: AppearanceVariables;
}

/** What `update()` may change without remounting (typed values stay). */
export interface CardUpdate {
  style?: CardStyle;
  appearance?: Appearance;
  /** A BCP 47 tag or `'auto'`. */
  locale?: Locale;
  placeholders?: Partial<Record<CardField, string>>;
  /** Label text per field (default: the locale's), shown with `showLabels`, else read by screen readers. */
  label?: Partial<Record<CardField, string>>;
  /** Accessible name per field (`aria-label`), read instead of the label; the label stays visible. */
  ariaLabel?: Partial<Record<CardField, string>>;
  /** Shows each field's label above its input (default `false`: labels for screen readers only). */
  showLabels?: boolean;
  /** Disables every input (the `disabled` variant applies). */
  disabled?: boolean;
}

export interface CardOptions extends CardUpdate {
  /** Publishable key, `pk_test_...` or `pk_live_...`. */
  key: string;
  /** Optional fields, both off by default. */
  fields?: { name?: boolean; postalCode?: boolean };
  /** Title of the iframe for assistive technology. */
  title?: string;
  /** Vault origin; defaults to the origin this script was loaded from. */
  vaultOrigin?: string;
  /**
   * Who shows the error text: the frame under the inputs (`'frame'`, the default), or only the
   * page, from `change` payloads and rejections (`'none'`: the frame keeps the text as the
   * inputs' accessible description, visually hidden).
   */
  errors?: 'frame' | 'none';
  /** Message overrides by error code, used in the frame, in payloads and in rejections. */
  messages?: Partial<Record<ErrorCode, string>> & { [code: string]: string };
  /**
   * Web fonts registered with the vault's admin API (`POST /v1/fonts`), loaded by the frame from
   * the vault's origin before `ready` (at most 8; up to 3 s, then a `font_failed` warning).
   * Use the family in `style` or `appearance.variables.fontFamily`.
   */
  fonts?: FontSource[];
}

/** A face registered with `POST /v1/fonts` (docs/http-api.md, "Web fonts"). */
export interface FontSource {
  /** The family it was registered with, e.g. `'Open Sans'`. */
  family: string;
  /** The font's `url` from the admin API: `/v1/frame/fonts/<hash>.woff2`. */
  src: string;
  /** 100–900 (default 400). */
  weight?: number | string;
  /** Default `'normal'`. */
  style?: 'normal' | 'italic';
}

/** Every documented error code (see docs/postmessage.md, "Error codes"). */
export type ErrorCode =
  | 'invalid_number' | 'incomplete_number' | 'unsupported_brand' | 'invalid_characters'
  | 'incomplete_expiry' | 'invalid_expiry_month' | 'invalid_expiry_year' | 'expired'
  | 'expiry_too_far' | 'incomplete_cvc' | 'invalid_cvc' | 'incomplete_name' | 'incomplete_postal_code'
  | 'tokenize_in_progress' | 'network_error' | 'rate_limited' | 'authentication_error'
  | 'processing_error' | 'not_ready' | 'timeout' | 'destroyed' | 'mount_target_not_found'
  | 'frame_refused' | 'mount_timeout';

/** Something the merchant should fix; also logged with `console.warn` under a `pk_test_` key. */
export interface CardWarning {
  /**
   * `'style_rejected'`: style properties or theme variables that were not applied;
   * `'font_failed'`: web fonts that did not load (`properties` are their families).
   */
  code: string;
  message: string;
  /**
   * `'variant.property'` names (`'base.position'`), a variant name that is unknown, or
   * `'appearance.variables.name'`.
   */
  properties: string[];
}

export interface FieldState {
  empty: boolean;
  valid: boolean;
  potentiallyValid: boolean;
  focused: boolean;
  /** The browser's autofill filled the field (until the cardholder edits it). */
  autofilled: boolean;
}

export interface CardError {
  code: string;
  message: string;
  field?: CardField;
}

export interface ChangePayload {
  brand: CardBrand | null;
  /** First 8 digits (numbers of 16 digits or more) or 6, once the number is complete and valid. */
  bin: string | null;
  /** Last 4 digits, once the number is complete and valid. */
  last4: string | null;
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
  warning: CardWarning;
  /** Escape pressed in a field. */
  escape: { field: CardField };
  /** The browser's autofill filled a field. */
  autofill: { field: CardField };
  /** The frame failed to load (`frame_refused`, `mount_timeout`); `mount()` rejects with the same error. */
  loaderror: CardError;
}

export interface CardElement {
  /**
   * Inserts the sandboxed iframe into the element; resolves when the frame is ready. While
   * mounting or once ready it returns the same promise; after a failure (or a destroy) it
   * mounts afresh. A frame that becomes ready after a failure makes later calls resolve.
   */
  mount(target: string | HTMLElement): Promise<CardElement>;
  /** Throws `TypeError` for an unknown event name. */
  on<E extends keyof CardEvents>(event: E, handler: (payload: CardEvents[E]) => void): CardElement;
  /** Throws `TypeError` for an unknown event name. */
  off<E extends keyof CardEvents>(event: E, handler?: (payload: CardEvents[E]) => void): CardElement;
  /** The last `change` payload (`null` before ready). */
  state(): ChangePayload | null;
  /**
   * Rejects with a {@link CardError}. Split fields: collects every field inside the vault's
   * origin; rejects `incomplete_number` / `incomplete_expiry` / `incomplete_cvc` (with `field`)
   * when that field element was never mounted or was destroyed.
   */
  tokenize(): Promise<TokenResult>;
  focus(field?: 'number' | 'expiry' | 'cvc' | 'name' | 'postalCode'): void;
  /** Empties one field (input and memory), or every field without an argument. Throws `TypeError` for an unknown field. */
  clear(field?: 'number' | 'expiry' | 'cvc' | 'name' | 'postalCode'): void;
  /** Takes focus away from the frame's focused input (a `blur` event follows). */
  blur(): void;
  /** Changes style, appearance, locale, placeholders or `disabled` in place; typed values stay. */
  update(options: CardUpdate): CardElement;
  /** Removes the iframe(s), the listeners and every handler; `mount()` may be called again. */
  destroy(): void;
  /**
   * Split fields: the element of one field, each in its own iframe (the same one for the same
   * name). Exclusive with `mount()` on one card: the first call decides, the other throws
   * `TypeError`; an unknown field name throws `TypeError`.
   */
  field(name: CardField): FieldElement;
}

/** The events of one split field's frame (`card.field(name).on(...)`): about that field only. */
export type FieldEvents = Pick<CardEvents, 'ready' | 'change' | 'focus' | 'blur' | 'submit' | 'brand' | 'warning' | 'escape' | 'autofill' | 'loaderror'>;

/**
 * One field of a split card (`card.field(name)`): its own iframe, laid out by the page. Every
 * field of one card shares one group inside the vault's origin; `card.tokenize()` collects them.
 */
export interface FieldElement {
  /**
   * Inserts this field's sandboxed iframe into the element; resolves (to this field element)
   * when its frame is ready. Same states as `CardElement.mount()`.
   */
  mount(target: string | HTMLElement): Promise<FieldElement>;
  /** This field's events; `change`/`ready` carry its frame's state (its own field in `fields`). Throws `TypeError` for an unknown event name. */
  on<E extends keyof FieldEvents>(event: E, handler: (payload: FieldEvents[E]) => void): FieldElement;
  /** Throws `TypeError` for an unknown event name. */
  off<E extends keyof FieldEvents>(event: E, handler?: (payload: FieldEvents[E]) => void): FieldElement;
  /** This field's frame's last `change` payload (`null` before ready). */
  state(): ChangePayload | null;
  focus(): void;
  /** Empties this field (input and memory). */
  clear(): void;
  blur(): void;
  /** Removes this field's iframe and handlers; `mount()` may be called again. */
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
