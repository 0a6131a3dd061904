// TypeScript declarations of @altafinex/js. The card element's types are the loader's own
// (`./loader.d.ts`, copied from web/loader.d.ts by the build), which test/protocol.test.mjs
// checks against the Rust protocol types (protocol.json) so they cannot drift.
import type { AltafinexStatic, CardElement, CardOptions } from './loader';

export * from './loader';

/** A pinned loader, as `/v1/loader-manifest.json` publishes it. */
export interface LoaderPin {
  /** `/v1/loader.<16 letters a–p>.js`. */
  url: string;
  /** `sha384-…`. */
  integrity: string;
}

export interface LoadOptions {
  /** The vault's origin, e.g. `https://vault.example`. */
  vaultOrigin: string;
  /**
   * A pinned loader (copy `url` and `integrity` from the manifest at build time), or
   * `'evergreen'` (`/v1/loader.js`, no SRI). Default: the manifest is read at run time
   * (the page's CSP needs `connect-src <vault>`) and its versioned URL loaded with SRI.
   */
  loader?: LoaderPin | 'evergreen';
}

/** A failed load (the promise rejects with it; the next call tries again). */
export interface LoadError extends Error {
  code: 'loader_manifest_invalid' | 'loader_manifest_unavailable' | 'loader_failed';
}

export declare const MANIFEST_PATH: '/v1/loader-manifest.json';

/**
 * Loads the loader once per page; resolves to `window.Altafinex`, or to `null` on the server
 * (no `window`: safe during server-side rendering). Rejects with a {@link LoadError}, or a
 * `TypeError` for a bad `vaultOrigin` or a second vault origin on the same page.
 */
export declare function loadAltafinex(options: LoadOptions): Promise<AltafinexStatic | null>;

/** The page's `Altafinex` if the loader has run already, else `null` (always `null` on the server). */
export declare function loadedAltafinex(): AltafinexStatic | null;

/** `loadAltafinex(load)` then `Altafinex.card(options)` with `vaultOrigin` filled in; `null` on the server. */
export declare function createCard(load: LoadOptions, options: CardOptions): Promise<CardElement | null>;
