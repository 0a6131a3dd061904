// TypeScript declarations of @altafinex/js/react-binding (and, through react.d.ts,
// @altafinex/js/react). Standalone: no @types/react needed; the components' return type is
// structurally a React element.
import type { AltafinexStatic, CardElement as Card, CardEvents, CardOptions, ChangePayload, CardError } from './loader';
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

export interface CardElementProps {
  /** `style`, `appearance`, `locale`, `placeholders`, `label`, `ariaLabel`, `showLabels`, `disabled` change in place (`update()`); other changes mount a new element. */
  options: ElementOptions;
  /** Load options; default: the nearest `<AltafinexProvider>`'s. */
  load?: LoadOptions;
  id?: string;
  className?: string;
  /** The card element once ready (for `tokenize()`), `null` when it goes. */
  onElement?: (card: Card | null) => void;
  onReady?: CardHandler<'ready'>;
  onChange?: CardHandler<'change'>;
  onFocus?: CardHandler<'focus'>;
  onBlur?: CardHandler<'blur'>;
  onSubmit?: CardHandler<'submit'>;
  onBrand?: CardHandler<'brand'>;
  onWarning?: CardHandler<'warning'>;
  onEscape?: CardHandler<'escape'>;
  onAutofill?: CardHandler<'autofill'>;
  onLoadError?: CardHandler<'loaderror'>;
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
}

/** The binding over the React object given (18 or later); `load` defaults to `loadAltafinex`. */
export declare function createReactBinding(React: unknown, load?: typeof loadAltafinex): ReactBinding;
