// Starts the frame's WebAssembly without any inline script: the vault's CSP allows scripts
// from 'self' only. Trunk puts a modulepreload link for the wasm-bindgen glue and a preload
// link for the .wasm into <head>, both with SRI hashes; this module loads exactly those.
const glueLink = document.querySelector('link[rel="modulepreload"][href$=".js"]');
const wasmLink = document.querySelector('link[rel="preload"][href$=".wasm"]');
const glue = await import(glueLink.href);
await glue.default({
  module_or_path: fetch(wasmLink.href, { integrity: wasmLink.integrity || '' }),
});
glue.boot();
