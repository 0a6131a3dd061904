// The React binding, written against the React object it is given (no JSX, no import of
// 'react' here), so a page without a bundler can pass its own React (`window.React`) and
// `./react.js` passes the one a bundler resolves. Docs: README.md, "React".
import { loadAltafinex as defaultLoad, loadedAltafinex } from './index.js';

/** Events of the card element and the props that receive them. */
const EVENT_PROPS = {
  ready: 'onReady',
  change: 'onChange',
  focus: 'onFocus',
  blur: 'onBlur',
  submit: 'onSubmit',
  brand: 'onBrand',
  warning: 'onWarning',
  escape: 'onEscape',
  autofill: 'onAutofill',
  loaderror: 'onLoadError',
};

/** Options `update()` changes in place; any other option change mounts a new element. */
const UPDATABLE = ['style', 'appearance', 'locale', 'placeholders', 'label', 'ariaLabel', 'showLabels', 'disabled'];

function split(options) {
  const mount = {};
  const update = {};
  for (const k of Object.keys(options || {})) (UPDATABLE.includes(k) ? update : mount)[k] = options[k];
  return { mount, update };
}

/** The split fields (the loader's `FIELDS`, in its order) and the components that render them. */
const FIELD_COMPONENTS = {
  number: 'CardNumberField',
  expiry: 'CardExpiryField',
  cvc: 'CardCvcField',
  name: 'CardNameField',
  postalCode: 'CardPostalCodeField',
};

/** Fields that become part of the card once their field element exists (docs/loader.md). */
const OPTIONAL_FIELDS = ['name', 'postalCode'];

/** `{ ready: props.onReady, … }`: the event handlers among a component's props. */
function handlersOf(props) {
  const handlers = {};
  for (const [name, prop] of Object.entries(EVENT_PROPS)) handlers[name] = props[prop];
  return handlers;
}

/** A rejection shaped like the loader's (`{ code, message }`). */
function notReady(message) {
  return Promise.reject({ code: 'not_ready', message });
}

/**
 * Builds the binding over `React` (18 or later): `{ AltafinexProvider, useAltafinex,
 * useCardElement, CardElement }` for the single frame and `{ CardFields, CardNumberField,
 * CardExpiryField, CardCvcField, CardNameField, CardPostalCodeField, useCardFields,
 * useCardFieldElement }` for split fields. `load` defaults to this package's `loadAltafinex`.
 */
export function createReactBinding(React, load = defaultLoad) {
  const { createElement, createContext, useContext, useEffect, useMemo, useRef, useState } = React;
  const LoadContext = createContext(null);
  const FieldsContext = createContext(null);

  /** Gives the load options (`{ vaultOrigin, loader? }`) to every hook and `<CardElement>` below it. */
  function AltafinexProvider(props) {
    return createElement(LoadContext.Provider, { value: props.options }, props.children);
  }

  function loadOptions(given) {
    const ctx = useContext(LoadContext);
    const options = given || ctx;
    if (!options) throw new TypeError('useAltafinex: pass { vaultOrigin } or render inside <AltafinexProvider options={…}>');
    return options;
  }

  /**
   * `{ altafinex, error }`: the loader's `Altafinex` once loaded (`null` before, and always
   * during server-side rendering), or the load error.
   */
  function useAltafinex(options) {
    const opts = loadOptions(options);
    // Already loaded (an earlier component, or the page awaited loadAltafinex): available at
    // the first render, so a card element mounts in the first effect.
    const [result, setResult] = useState(() => ({ altafinex: loadedAltafinex(), error: null }));
    const origin = opts.vaultOrigin;
    useEffect(() => {
      let live = true;
      load(opts).then(
        (altafinex) => live && setResult((r) => (r.altafinex === altafinex ? r : { altafinex, error: null })),
        (error) => live && setResult({ altafinex: null, error }),
      );
      return () => {
        live = false;
      };
      // One load per vault origin; the loader itself loads once per page.
      // eslint-disable-next-line react-hooks/exhaustive-deps
    }, [origin]);
    return result;
  }

  /**
   * Mounts a card element into the element `ref` is attached to (render that element
   * unconditionally) and destroys it on unmount: `{ ref, element, state, error }`. Under
   * StrictMode's mount → unmount → mount exactly one iframe and one message listener remain (the first element is destroyed before the second
   * is created). `handlers` maps event names to functions (the latest ones are always called).
   */
  function useCardElement(options, handlers, loadOpts) {
    const vaultOrigin = loadOptions(loadOpts).vaultOrigin;
    const { altafinex, error: loadError } = useAltafinex(loadOpts);
    const ref = useRef(null);
    const [element, setElement] = useState(null);
    const [state, setState] = useState(null);
    const [error, setError] = useState(null);
    const handlersRef = useRef(handlers || {});
    handlersRef.current = handlers || {};
    const { mount, update } = split(options);
    const mountKey = JSON.stringify(mount);
    const updateKey = JSON.stringify(update);
    const updateRef = useRef(update);
    updateRef.current = update;

    useEffect(() => {
      const host = ref.current;
      if (!altafinex || !host) return undefined;
      const card = altafinex.card({ vaultOrigin, ...JSON.parse(mountKey), ...updateRef.current });
      for (const name of Object.keys(EVENT_PROPS)) {
        card.on(name, (payload) => {
          if (name === 'ready' || name === 'change') setState(payload);
          const h = handlersRef.current[name];
          if (typeof h === 'function') h(payload, card);
        });
      }
      let live = true;
      setError(null);
      card.mount(host).then(
        () => live && setElement(card),
        (e) => live && setError(e),
      );
      return () => {
        live = false;
        card.destroy();
        setElement(null);
        setState(null);
      };
    }, [altafinex, mountKey, vaultOrigin]);

    const applied = useRef(updateKey);
    useEffect(() => {
      if (element && applied.current !== updateKey) element.update(JSON.parse(updateKey));
      applied.current = updateKey;
    }, [element, updateKey]);

    return { ref, element, state, error: error || loadError };
  }

  /**
   * `<CardElement options={…} onChange={…} onReady={(payload, card) => …} className="…" />`:
   * a `<div>` holding the card frame. `onElement(card | null)` receives the element once ready
   * (and `null` when it goes), for `tokenize()`.
   */
  function CardElement(props) {
    const card = useCardElement(props.options, handlersOf(props), props.load);
    useReportElement(props.onElement, card.element);
    return createElement('div', { ref: card.ref, id: props.id, className: props.className });
  }

  /**
   * Calls `onElement(element)` once `element` exists and `onElement(null)` when it goes (the
   * latest `onElement` prop, without re-running the effect when only the callback changes).
   */
  function useReportElement(onElementProp, element) {
    const onElement = useRef(onElementProp);
    onElement.current = onElementProp;
    useEffect(() => {
      const report = (value) => typeof onElement.current === 'function' && onElement.current(value);
      if (element) report(element);
      return () => {
        if (element) report(null);
      };
    }, [element]);
  }

  // Split fields (docs/js-package.md, "Split fields"). <CardFields> owns one card of the loader in
  // split mode (`card.field(name)`); each field component mounts its field element into its own
  // <div>. The card is created during render (`altafinex.card()` builds an object: no DOM, no
  // listener until a field mounts), so the fields mount on it in their first effects; it is
  // destroyed in <CardFields>'s effect cleanup and, as the loader allows, mounted again by the
  // fields when StrictMode re-runs the effects: one card, one group, one iframe per field.

  /**
   * `<CardFields options={…} onChange={…}>…fields…</CardFields>`: one card split into the field
   * components rendered anywhere below it; renders no element of its own.
   */
  function CardFields(props) {
    const vaultOrigin = loadOptions(props.load).vaultOrigin;
    const { altafinex, error: loadError } = useAltafinex(props.load);
    const { mount, update } = split(props.options);
    // The rendered field components decide which fields the card has, not `fields`.
    delete mount.fields;
    const mountKey = JSON.stringify(mount);
    const updateKey = JSON.stringify(update);
    const updateRef = useRef(update);
    updateRef.current = update;
    // Bumped when an optional field (name, postal code) leaves: the loader keeps a field element
    // it created required, so the card without it is a new card.
    const [generation, setGeneration] = useState(0);
    const card = useMemo(
      () => (altafinex ? altafinex.card({ vaultOrigin, ...JSON.parse(mountKey), ...updateRef.current }) : null),
      [altafinex, vaultOrigin, mountKey, generation],
    );
    const [state, setState] = useState(null);
    // field -> { ready, error } of every field component mounted on this card.
    const [fields, setFields] = useState({});
    const handlersRef = useRef(null);
    handlersRef.current = handlersOf(props);
    const current = useRef({ card: null, live: false });

    useEffect(() => {
      if (!card) return undefined;
      current.current = { card, live: true };
      for (const name of Object.keys(EVENT_PROPS)) {
        card.on(name, (payload) => {
          if (name === 'ready' || name === 'change') setState(payload);
          const h = handlersRef.current[name];
          if (typeof h === 'function') h(payload, card);
        });
      }
      return () => {
        current.current = { card: null, live: false };
        // Every field's iframe and listener, the card's handlers, pending tokenize()s.
        card.destroy();
        setState(null);
      };
    }, [card]);

    const applied = useRef({ card, key: updateKey });
    useEffect(() => {
      if (card && applied.current.card === card && applied.current.key !== updateKey) card.update(JSON.parse(updateKey));
      applied.current = { card, key: updateKey };
    }, [card, updateKey]);

    // What the field components tell the group; stable for the group's lifetime.
    const registry = useRef(null);
    if (!registry.current) {
      const claims = new Map();
      const report = (field, entry) =>
        setFields((f) => {
          if (!entry) {
            if (!(field in f)) return f;
            const { [field]: _gone, ...rest } = f;
            return rest;
          }
          const was = f[field];
          return was && was.ready === entry.ready && was.error === entry.error ? f : { ...f, [field]: entry };
        });
      registry.current = {
        /** One component per field and card: false when another one holds `field`. */
        claim(field, owner) {
          const holder = claims.get(field);
          if (holder && holder !== owner) return false;
          claims.set(field, owner);
          report(field, { ready: false, error: null });
          return true;
        },
        report,
        release(field, owner, card) {
          if (claims.get(field) !== owner) return;
          claims.delete(field);
          report(field, null);
          // Not back within this commit (StrictMode's remount, a new card): an optional field
          // really left, and the card it was part of can no longer tokenize without it.
          if (OPTIONAL_FIELDS.includes(field)) {
            queueMicrotask(() => {
              const now = current.current;
              if (!claims.has(field) && now.live && now.card === card) setGeneration((g) => g + 1);
            });
          }
        },
      };
    }

    const entries = Object.values(fields);
    const ready = Boolean(card) && entries.length > 0 && entries.every((f) => f.ready);
    const fieldError = entries.map((f) => f.error).find(Boolean) || null;
    const error = loadError || fieldError;
    const messages = useRef(null);
    messages.current = (props.options && props.options.messages) || {};
    const tokenize = useRef(null);
    if (!tokenize.current) {
      const notYet = () => notReady(messages.current.not_ready || 'The card fields are not loaded yet.');
      tokenize.current = () => {
        const { card: live } = current.current;
        if (!live) return notYet();
        // A card StrictMode destroyed and its fields mounted again says `destroyed` until they
        // are ready; for this live group that is `not_ready`.
        return live.tokenize().catch((e) => {
          if (e && e.code === 'destroyed' && current.current.card === live) return notYet();
          throw e;
        });
      };
    }
    const value = useMemo(
      () => ({ card, ready, state, error, tokenize: tokenize.current, registry: registry.current }),
      [card, ready, state, error],
    );

    const onElement = useRef(props.onElement);
    onElement.current = props.onElement;
    const readyCard = ready ? card : null;
    useEffect(() => {
      const report = (element) => typeof onElement.current === 'function' && onElement.current(element);
      if (readyCard) report(readyCard);
      return () => {
        if (readyCard) report(null);
      };
    }, [readyCard]);

    return createElement(FieldsContext.Provider, { value }, props.children);
  }

  function fieldsContext(hook) {
    const group = useContext(FieldsContext);
    if (!group) throw new TypeError(`${hook}: render inside <CardFields>`);
    return group;
  }

  /**
   * `{ card, ready, state, error, tokenize }` of the nearest `<CardFields>`: `tokenize()` collects
   * every field inside the vault's origin (rejects `{ code: 'not_ready' }` before the loader is
   * there); `ready` once every field rendered is; `state` the merged `ChangePayload`.
   */
  function useCardFields() {
    const { card, ready, state, error, tokenize } = fieldsContext('useCardFields');
    return { card, ready, state, error, tokenize };
  }

  /**
   * Mounts the field element `field` of the nearest `<CardFields>` into the element `ref` is
   * attached to (render it unconditionally) and destroys it on unmount: `{ ref, element, state,
   * error }`, like `useCardElement`. `handlers` receive this field's events.
   */
  function useCardFieldElement(field, handlers) {
    if (!Object.prototype.hasOwnProperty.call(FIELD_COMPONENTS, field)) {
      throw new TypeError(`useCardFieldElement: unknown field "${field}"`);
    }
    const { card, registry } = fieldsContext('useCardFieldElement');
    const ref = useRef(null);
    const [element, setElement] = useState(null);
    const [state, setState] = useState(null);
    const [error, setError] = useState(null);
    const handlersRef = useRef(handlers || {});
    handlersRef.current = handlers || {};

    useEffect(() => {
      const host = ref.current;
      if (!card || !host) return undefined;
      const owner = {};
      if (!registry.claim(field, owner)) {
        setError(new TypeError(`<CardFields>: the ${field} field is rendered twice`));
        return () => setError(null);
      }
      const fieldElement = card.field(field);
      let live = true;
      const isReady = () => {
        if (!live) return;
        setElement(fieldElement);
        setError(null);
        registry.report(field, { ready: true, error: null });
      };
      const failed = (e) => {
        if (!live) return;
        setError(e);
        registry.report(field, { ready: false, error: e });
      };
      for (const name of Object.keys(EVENT_PROPS)) {
        fieldElement.on(name, (payload) => {
          if (name === 'ready' || name === 'change') setState(payload);
          // A frame that was only slow is ready after all (docs/loader.md, "States").
          if (name === 'ready') isReady();
          const h = handlersRef.current[name];
          if (typeof h === 'function') h(payload, fieldElement);
        });
      }
      setError(null);
      fieldElement.mount(host).then(isReady, failed);
      return () => {
        live = false;
        // Its iframe, its message listener and its handlers; a pending mount() rejects
        // `destroyed`, into `failed` above, which ignores it.
        fieldElement.destroy();
        registry.release(field, owner, card);
        setElement(null);
        setState(null);
      };
    }, [card, field, registry]);

    return { ref, element, state, error };
  }

  /** `<CardNumberField>` and its siblings: a `<div>` holding one field's frame. */
  function fieldComponent(field, displayName) {
    function Field(props) {
      const f = useCardFieldElement(field, handlersOf(props));
      useReportElement(props.onElement, f.element);
      return createElement('div', { ref: f.ref, id: props.id, className: props.className });
    }
    Field.displayName = displayName;
    return Field;
  }
  const fieldComponents = {};
  for (const [field, name] of Object.entries(FIELD_COMPONENTS)) fieldComponents[name] = fieldComponent(field, name);

  return {
    AltafinexProvider,
    useAltafinex,
    useCardElement,
    CardElement,
    CardFields,
    ...fieldComponents,
    useCardFields,
    useCardFieldElement,
  };
}
