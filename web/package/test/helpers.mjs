// Shared by the package's tests: paths, the project's pinned tools (.tools, scripts/setup.sh)
// and a fake browser window just large enough for loadAltafinex.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
export const repo = join(pkg, '..', '..');
export const tools = process.env.ALTAFINEX_TOOLS || join(repo, '.tools', 'node_modules');

/** A module from .tools/node_modules (typescript, react, react-dom), or a clear failure. */
export function tool(name) {
  const path = join(tools, name.split('/')[0]);
  if (!existsSync(path)) throw new Error(`missing ${path}: run scripts/setup.sh`);
  return createRequire(join(tools, 'x.js'))(name);
}

let fresh = 0;
/** A new instance of src/index.js (module state: the shared load promise). */
export function freshLoader() {
  return import(`../src/index.js?instance=${++fresh}`);
}

/** A fake `window` with `document.createElement('script')`, event listeners and `fetch`. */
export function fakeWindow({ manifest, fetchFails = false } = {}) {
  const scripts = [];
  const fetched = [];
  const win = {
    fetched,
    scripts,
    document: {
      head: {
        appendChild(el) {
          el.parentNode = this;
          scripts.push(el);
        },
        removeChild(el) {
          el.parentNode = null;
          scripts.splice(scripts.indexOf(el), 1);
        },
      },
      createElement(tag) {
        const listeners = {};
        return {
          tag,
          attributes: {},
          setAttribute(k, v) {
            this.attributes[k] = v;
          },
          addEventListener(k, f) {
            (listeners[k] ||= []).push(f);
          },
          removeEventListener(k, f) {
            listeners[k] = (listeners[k] || []).filter((g) => g !== f);
          },
          fire(k) {
            for (const f of listeners[k] || []) f();
          },
          listenerCount() {
            return Object.values(listeners).reduce((n, l) => n + l.length, 0);
          },
        };
      },
    },
    async fetch(url, init) {
      fetched.push({ url, init });
      if (fetchFails) throw new TypeError('Failed to fetch');
      return { ok: true, status: 200, json: async () => manifest };
    },
  };
  return win;
}

/** Runs `f` with `globalThis.window` set to `win`, restoring it afterwards. */
export async function withWindow(win, f) {
  const had = Object.prototype.hasOwnProperty.call(globalThis, 'window');
  const old = globalThis.window;
  globalThis.window = win;
  try {
    return await f();
  } finally {
    if (had) globalThis.window = old;
    else delete globalThis.window;
  }
}

export const VAULT = 'https://vault.example';
export const PIN = {
  url: '/v1/loader.abcdefghijklmnop.js',
  integrity: 'sha384-' + 'A'.repeat(64),
};
