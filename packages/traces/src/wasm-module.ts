/**
 * The package's WebAssembly modules (assembly/*.ts, compiled by scripts/build.mjs into dist/ beside
 * this bundle), compiled once per process. Each is a fast path of something src/ also does in
 * JavaScript, so a missing file (a bundler that left it behind) costs speed, never a result: the
 * loader answers null and the caller takes its JavaScript path.
 */
import { readFileSync } from "node:fs";

const compiled = new Map<string, WebAssembly.Module | null>();

export function wasmModule(file: string): WebAssembly.Module | null {
  let module = compiled.get(file);
  if (module === undefined) {
    try {
      module = new WebAssembly.Module(readFileSync(new URL(`./${file}`, import.meta.url)));
    } catch {
      module = null;
    }
    compiled.set(file, module);
  }
  return module;
}
