const g = document.querySelector('link[rel="modulepreload"][href$=".js"]');
const w = document.querySelector('link[rel="preload"][href$=".wasm"]');
const m = WebAssembly.compileStreaming(fetch(w.href, { integrity: w.integrity || '' }));
const glue = await import(g.href);
await glue.default({ module_or_path: m });
glue.boot();
