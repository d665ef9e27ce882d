// The few WebAssembly JS API types the packages use (core-sim's policies, traces' entry scanner, the
// property harness's adapter). Node has the API at run time, but @types/node does not declare it
// and the project's lib setting (ES2022, no DOM) leaves it out. tsconfig.base.json includes this file.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: ArrayBufferView | ArrayBuffer);
    static imports(module: Module): { module: string; name: string; kind: string }[];
    static exports(module: Module): { name: string; kind: string }[];
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    /** grows by `pages` of 64 KiB; returns the previous size in pages */
    grow(pages: number): number;
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class RuntimeError extends Error {}
}
