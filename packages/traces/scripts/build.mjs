// Builds the package: tsup bundles src/ into dist/ (and cleans dist/ first), then asc compiles the
// kernels in assembly/ (the pickle entry scanner, block numbering) into dist/*.wasm, which
// dist/index.js loads from beside itself.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const run = (file, args) => execFileSync(process.execPath, [file, ...args], { cwd: root, stdio: "inherit" });

run(require.resolve("tsup/dist/cli-default.js"), []);
for (const kernel of ["entry-scanner", "block-ids"]) {
  run(require.resolve("assemblyscript/bin/asc.js"), [
    `assembly/${kernel}.ts`,
    "--outFile", `dist/${kernel}.wasm`,
    "--runtime", "stub",
    "--optimizeLevel", "3",
    "--shrinkLevel", "0",
    "--noAssert",
  ]);
}
