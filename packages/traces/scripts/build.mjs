// Builds the package: tsup bundles src/ into dist/ (and cleans dist/ first), then asc compiles the
// entry scanner in assembly/ into dist/entry-scanner.wasm, which dist/index.js loads from beside itself.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const run = (file, args) => execFileSync(process.execPath, [file, ...args], { cwd: root, stdio: "inherit" });

run(require.resolve("tsup/dist/cli-default.js"), []);
run(require.resolve("assemblyscript/bin/asc.js"), [
  "assembly/entry-scanner.ts",
  "--outFile", "dist/entry-scanner.wasm",
  "--runtime", "stub",
  "--optimizeLevel", "3",
  "--shrinkLevel", "0",
  "--noAssert",
]);
