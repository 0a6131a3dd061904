// @altafinex/js: loads the Altafinex card loader (`/v1/loader.<version>.js`) once and hands back
// its `Altafinex` object. Safe to import during server-side rendering: nothing here touches
// `window` or `document` until `loadAltafinex()` is called in a browser. Docs: README.md.

/** The vault's current loader manifest path (`{ version, url, integrity, evergreen }`). */
export const MANIFEST_PATH = '/v1/loader-manifest.json';

const VERSIONED = /^\/v1\/loader\.[a-p]{16}\.js$/;
const SRI = /^sha384-[A-Za-z0-9+/]{64}$/;

// One load per page: every call shares this promise (and its vault origin).
let loading = null;
let loadingOrigin = null;

function failure(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

function originOf(value) {
  let url;
  try {
    url = new URL(value);
  } catch {
    url = null;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new TypeError('loadAltafinex: vaultOrigin must be an http(s) origin such as https://vault.example');
  }
  return url.origin;
}

/** A pinned loader `{ url, integrity }` as the manifest publishes it; throws when it is not one. */
function checkPin(pin, where) {
  if (!pin || typeof pin.url !== 'string' || !VERSIONED.test(pin.url) || typeof pin.integrity !== 'string' || !SRI.test(pin.integrity)) {
    throw failure('loader_manifest_invalid', `loadAltafinex: ${where} is not a versioned loader URL with a sha384 integrity`);
  }
  return { url: pin.url, integrity: pin.integrity };
}

async function readManifest(win, vault) {
  let res;
  try {
    res = await win.fetch(vault + MANIFEST_PATH, { credentials: 'omit', mode: 'cors' });
  } catch {
    throw failure('loader_manifest_unavailable', `loadAltafinex: cannot read ${vault}${MANIFEST_PATH} (network, or the page's CSP connect-src)`);
  }
  if (!res.ok) throw failure('loader_manifest_unavailable', `loadAltafinex: ${vault}${MANIFEST_PATH} answered ${res.status}`);
  return checkPin(await res.json(), 'the manifest');
}

function inject(win, vault, pin) {
  const doc = win.document;
  return new Promise((resolve, reject) => {
    const script = doc.createElement('script');
    script.src = vault + pin.url;
    script.async = true;
    if (pin.integrity) {
      script.integrity = pin.integrity;
      script.crossOrigin = 'anonymous';
    }
    script.setAttribute('data-altafinex-loader', '');
    const done = () => {
      script.removeEventListener('load', onLoad);
      script.removeEventListener('error', onError);
    };
    const onLoad = () => {
      done();
      if (win.Altafinex && typeof win.Altafinex.card === 'function') resolve(win.Altafinex);
      else reject(failure('loader_failed', 'loadAltafinex: the loader script ran but defined no Altafinex'));
    };
    const onError = () => {
      done();
      if (script.parentNode) script.parentNode.removeChild(script);
      reject(failure('loader_failed', `loadAltafinex: ${script.src} did not load (network, CSP script-src, or an integrity mismatch)`));
    };
    script.addEventListener('load', onLoad);
    script.addEventListener('error', onError);
    (doc.head || doc.documentElement).appendChild(script);
  });
}

/**
 * Loads the card loader from `vaultOrigin` once per page and resolves to `window.Altafinex`.
 *
 * - On the server (no `window`): resolves to `null`, never throws, so it may be called from code
 *   that also runs during server-side rendering.
 * - Concurrent and later calls share one promise and one `<script>`; after a failure the next call
 *   tries again.
 * - `loader: { url, integrity }` pins the versioned loader with SRI (copy both from the vault's
 *   `/v1/loader-manifest.json` at build time: the strongest form). Without it the manifest is
 *   read at run time (needs `connect-src <vault>` in the page's CSP) and its versioned URL is
 *   loaded with its `integrity`. `loader: 'evergreen'` loads `/v1/loader.js` without SRI.
 */
export function loadAltafinex(options = {}) {
  const win = typeof window === 'undefined' ? undefined : window;
  if (!win || typeof win.document === 'undefined') return Promise.resolve(null);
  let vault;
  try {
    vault = originOf(options.vaultOrigin);
  } catch (e) {
    return Promise.reject(e);
  }
  if (loading) {
    if (loadingOrigin !== vault) {
      return Promise.reject(new TypeError(`loadAltafinex: already loading from ${loadingOrigin}; one vault per page`));
    }
    return loading;
  }
  loadingOrigin = vault;
  loading = (async () => {
    if (win.Altafinex && typeof win.Altafinex.card === 'function') return win.Altafinex;
    const pin = options.loader === 'evergreen'
      ? { url: '/v1/loader.js', integrity: '' }
      : options.loader
        ? checkPin(options.loader, 'options.loader')
        : await readManifest(win, vault);
    return inject(win, vault, pin);
  })();
  loading.catch(() => {
    loading = null;
    loadingOrigin = null;
  });
  return loading;
}

/** The page's `Altafinex` if the loader has run already, else `null` (always `null` on the server). */
export function loadedAltafinex() {
  const win = typeof window === 'undefined' ? undefined : window;
  return win && win.Altafinex && typeof win.Altafinex.card === 'function' ? win.Altafinex : null;
}

/**
 * `Altafinex.card(options)` with `vaultOrigin` filled in: a card element from the loader that
 * `loadAltafinex(options)` resolved to. Resolves to `null` on the server.
 */
export async function createCard(loadOptions, cardOptions) {
  const altafinex = await loadAltafinex(loadOptions);
  if (!altafinex) return null;
  return altafinex.card({ vaultOrigin: originOf(loadOptions.vaultOrigin), ...cardOptions });
}
