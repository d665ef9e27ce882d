// Builds what the tests need beyond the package itself (the `build:test` task; `npm test` runs it
// after `build`, and turbo skips it while assembly/ is unchanged): one Wasm module holding every
// deliberately broken policy variant of assembly/policies/broken.ts, for the property harness's
// self-check (test/property/broken-variants.ts).
//
//   build/test/core-sim-broken.wasm     the policies compiled with `--use BROKEN_VARIANTS=1`: the
//                                       variant to run is the global env.brokenVariant, given at
//                                       instantiation (0: none, the policies as shipped)
//   build/test/broken-variants.json     [{ name, variant, policy }], read from broken.ts
//
// One build instead of one per variant: asc spends about 20 s on each on the 2-core CI machine,
// nearly all of it before code generation. Built at -O1, quicker to build and fast enough for the
// few hundred runs the check makes. The shipped dist/core-sim.wasm never defines BROKEN_VARIANTS,
// so there BROKEN is the constant 0 and every guard folds away.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "build/test");
const asc = createRequire(import.meta.url).resolve("assemblyscript/bin/asc.js");

/** `export const BROKEN_<NAME>: i32 = <n>;` -> { name: "<name>", variant: n, policy: first word } */
function brokenVariants() {
  const text = readFileSync(join(root, "assembly/policies/broken.ts"), "utf8");
  return [...text.matchAll(/export const BROKEN_([A-Z0-9_]+): i32 = (\d+);/g)].map(([, constant, n]) => {
    const name = constant.toLowerCase().replace(/_/g, "-");
    return { name, variant: Number(n), policy: name.split("-")[0] };
  });
}

mkdirSync(out, { recursive: true });
execFileSync(process.execPath, [
  asc, "assembly/index.ts",
  "--outFile", join(out, "core-sim-broken.wasm"),
  "--runtime", "stub",
  "--optimizeLevel", "1",
  "--use", "BROKEN_VARIANTS=1",
], { cwd: root, stdio: "inherit" });
writeFileSync(join(out, "broken-variants.json"), `${JSON.stringify(brokenVariants(), null, 2)}\n`);
