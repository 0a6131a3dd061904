// TypeScript declarations of @altafinex/js/react-binding (and, through react.d.ts,
// @altafinex/js/react). Standalone: no @types/react needed; the components' return type is
// structurally a React element.
import type {
  AltafinexStatic, CardElement as Card, CardEvents, CardField, CardOptions, ChangePayload, CardError, FieldElement,
  FieldEvents, TokenResult,
} from './loader';
import type { LoadOptions, loadAltafinex } from './index';

/** What a component returns: structurally a React element. */
export interface ElementLike {
  type: unknown;
  props: unknown;
  key: string | null;
}

/** A handler of a card event: the payload and the card element. */
export type CardHandler<E extends keyof CardEvents> = (payload: CardEvents[E], card: Card) => void;

/** Card options without `vaultOrigin` (it comes from the load options). */
export type ElementOptions = Omit<CardOptions, 'vaultOrigin'>;

/** The event props of the components, by event: `onReady` for `ready`, … (the names of `EVENT_PROPS` in react-binding.js). */
export interface EventPropNames {
  ready: 'onReady';
  change: 'onChange';
  focus: 'onFocus';
  blur: 'onBlur';
  submit: 'onSubmit';
  brand: 'onBrand';
  warning: 'onWarning';
  escape: 'onEscape';
  autofill: 'onAutofill';
  loaderror: 'onLoadError';
}

/** A handler prop per card event (`onReady`, `onChange`, …). */
export type CardEventProps = { [E in keyof EventPropNames as EventPropNames[E]]?: CardHandler<E> };

/** A handler prop per field event (`onReady`, `onChange`, …): the field's own events. */
export type FieldEventProps = { [E in keyof EventPropNames as EventPropNames[E]]?: FieldHandler<E> };

export interface CardElementProps extends CardEventProps {
  /** `style`, `appearance`, `locale`, `placeholders`, `label`, `ariaLabel`, `showLabels`, `disabled` change in place (`update()`); other changes mount a new element. */
  options: ElementOptions;
  /** Load options; default: the nearest `<AltafinexProvider>`'s. */
  load?: LoadOptions;
  id?: string;
  className?: string;
  /** The card element once ready (for `tokenize()`), `null` when it goes. */
  onElement?: (card: Card | null) => void;
}

export interface UseCardElement {
  /** Attach to the element the frame goes in, rendered unconditionally (`createElement('div', { ref })`). */
  ref: { current: HTMLElement | null };
  /** The mounted card element once ready, else `null`. */
  element: Card | null;
  /** The last `ready`/`change` payload. */
  state: ChangePayload | null;
  /** A mount or load failure. */
  error: CardError | Error | null;
}

/** A handler of one split field's event: the payload and that field's element. */
export type FieldHandler<E extends keyof FieldEvents> = (payload: FieldEvents[E], field: FieldElement) => void;

/**
 * The options of a split card: card options without `vaultOrigin` (from the load options) and
 * without `fields` (the field components rendered decide).
 */
export type CardFieldsOptions = Omit<CardOptions, 'vaultOrigin' | 'fields'>;

export interface CardFieldsProps extends CardEventProps {
  /** `style`, `appearance`, `locale`, `placeholders`, `label`, `ariaLabel`, `showLabels`, `disabled` change in place in every field (`update()`); other changes make a new card (the fields mount again, empty). */
  options: CardFieldsOptions;
  /** Load options; default: the nearest `<AltafinexProvider>`'s. */
  load?: LoadOptions;
  /** The field components, anywhere below (and `useCardFields()` callers). */
  children?: unknown;
  /** The card once every field rendered is ready (for `tokenize()`), `null` when it goes. */
  onElement?: (card: Card | null) => void;
  // Every field's events (`CardEventProps`); `ready` and `change` carry the merged state of every field.
}

/** Props of `<CardNumberField>`, `<CardExpiryField>`, `<CardCvcField>`, `<CardNameField>`, `<CardPostalCodeField>`. */
export interface CardFieldProps extends FieldEventProps {
  id?: string;
  /** Of the `<div>`; the loader's `is-focused`, `is-invalid`, … classes of this field land on it. */
  className?: string;
  /** This field's element once ready (`focus()`, `clear()`), `null` when it goes. */
  onElement?: (field: FieldElement | null) => void;
  // This field's events (`FieldEventProps`); `ready` and `change` carry this field's frame's state.
}

export interface UseCardFields {
  /** The split card (`null` until the loader is there, and always during server rendering). */
  card: Card | null;
  /** Every field component rendered in the group is mounted and its frame ready. */
  ready: boolean;
  /** The last merged `ready`/`change` payload of every field. */
  state: ChangePayload | null;
  /** A load failure, or the first field's mount failure. */
  error: CardError | Error | null;
  /**
   * `card.tokenize()`, collecting every field inside the vault's origin; the same function for
   * the group's lifetime. Rejects with a {@link CardError}: `not_ready` before the card exists
   * or while a field is mounting, `incomplete_number` / `incomplete_expiry` / `incomplete_cvc`
   * (with `field`) while that field is not rendered, validation and vault codes.
   */
  tokenize(): Promise<TokenResult>;
}

export interface UseCardFieldElement {
  /** Attach to the element the field's frame goes in, rendered unconditionally. */
  ref: { current: HTMLElement | null };
  /** This field's element once ready, else `null`. */
  element: FieldElement | null;
  /** This field's frame's last `ready`/`change` payload (its own entry in `fields` counts). */
  state: ChangePayload | null;
  /** This field's mount failure, or a `TypeError` when the field is rendered twice in one group. */
  error: CardError | Error | null;
}

export interface ReactBinding {
  AltafinexProvider(props: { options: LoadOptions; children?: unknown }): ElementLike;
  /** `{ altafinex: null }` until loaded, and always during server-side rendering. */
  useAltafinex(options?: LoadOptions): { altafinex: AltafinexStatic | null; error: Error | null };
  useCardElement(
    options: ElementOptions,
    handlers?: { [E in keyof CardEvents]?: CardHandler<E> },
    load?: LoadOptions,
  ): UseCardElement;
  CardElement(props: CardElementProps): ElementLike;
  /** One card split into the field components below it (renders no element itself). */
  CardFields(props: CardFieldsProps): ElementLike;
  CardNumberField(props: CardFieldProps): ElementLike;
  CardExpiryField(props: CardFieldProps): ElementLike;
  CardCvcField(props: CardFieldProps): ElementLike;
  /** Makes the cardholder name part of the card (required). */
  CardNameField(props: CardFieldProps): ElementLike;
  /** Makes the billing postal code part of the card (required). */
  CardPostalCodeField(props: CardFieldProps): ElementLike;
  /** The nearest `<CardFields>`: throws `TypeError` outside one. */
  useCardFields(): UseCardFields;
  /** A field of the nearest `<CardFields>` in your own markup (attach `ref`). */
  useCardFieldElement(
    field: CardField,
    handlers?: { [E in keyof FieldEvents]?: FieldHandler<E> },
  ): UseCardFieldElement;
}

/** The binding over the React object given (18 or later); `load` defaults to `loadAltafinex`. */
export declare function createReactBinding(React: unknown, load?: typeof loadAltafinex): ReactBinding;
