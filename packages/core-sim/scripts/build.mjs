// Builds the package. asc compiles the policies in assembly/ into build/wasm/core-sim.wasm and
// declares its exports (--bindings raw writes a .d.ts beside it); wasm-exports.mjs turns those
// declarations into src/wasm-exports.ts, the one TypeScript statement of the module's exports;
// then tsup bundles src/ into dist/ (cleaning it first) and the module is copied beside
// dist/index.js, which loads it from there. asc runs first, so a module that does not compile
// leaves the previous dist/ as it was.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeWasmExports } from "./wasm-exports.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const run = (file, args) => execFileSync(process.execPath, [file, ...args], { cwd: root, stdio: "inherit" });

mkdirSync(join(root, "build/wasm"), { recursive: true });
run(require.resolve("assemblyscript/bin/asc.js"), [
  "assembly/index.ts",
  "--outFile", "build/wasm/core-sim.wasm",
  "--runtime", "stub",
  "--optimizeLevel", "3",
  "--shrinkLevel", "0",
  // the declarations only: the module is the same with or without them
  "--bindings", "raw",
]);
writeWasmExports(join(root, "build/wasm/core-sim.d.ts"), join(root, "src/wasm-exports.ts"));
run(require.resolve("tsup/dist/cli-default.js"), []);
copyFileSync(join(root, "build/wasm/core-sim.wasm"), join(root, "dist/core-sim.wasm"));
