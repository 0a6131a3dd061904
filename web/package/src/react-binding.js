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

/**
 * Builds `{ AltafinexProvider, useAltafinex, useCardElement, CardElement }` over `React`
 * (18 or later). `load` defaults to this package's `loadAltafinex`.
 */
export function createReactBinding(React, load = defaultLoad) {
  const { createElement, createContext, useContext, useEffect, useRef, useState } = React;
  const LoadContext = createContext(null);

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
    const handlers = {};
    for (const [name, prop] of Object.entries(EVENT_PROPS)) handlers[name] = props[prop];
    const card = useCardElement(props.options, handlers, props.load);
    const onElement = useRef(props.onElement);
    onElement.current = props.onElement;
    useEffect(() => {
      const report = (element) => typeof onElement.current === 'function' && onElement.current(element);
      if (card.element) report(card.element);
      return () => {
        if (card.element) report(null);
      };
    }, [card.element]);
    return createElement('div', { ref: card.ref, id: props.id, className: props.className });
  }

  return { AltafinexProvider, useAltafinex, useCardElement, CardElement };
}
