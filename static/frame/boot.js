// Starts the WASM from the SRI-checked preload links Trunk emits (inlined; the vault's CSP hashes it).
const glueLink = document.querySelector('link[rel="modulepreload"][href$=".js"]');
const wasmLink = document.querySelector('link[rel="preload"][href$=".wasm"]');
const glue = await import(glueLink.href);
await glue.default({
  module_or_path: fetch(wasmLink.href, { integrity: wasmLink.integrity || '' }),
});
glue.boot();
