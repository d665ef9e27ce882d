// Builds the deliberately broken policy variants of assembly/policies/broken.ts, one Wasm each, into
// build/broken/<name>.wasm, for the property harness's self-check (test/property/broken-variants.ts).
// Never part of the package's build: `npm run build:broken -w @lakebed/core-sim`, which the
// self-check runs itself when a variant is missing or older than the policy sources.
//
// Each variant is the normal module compiled with `--use BROKEN_VARIANT=<n>`; the variants are
// compiled in parallel (asc is single-threaded), at -O1, which is quicker to build and fast enough
// for the few hundred runs the check needs.
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const asc = createRequire(import.meta.url).resolve("assemblyscript/bin/asc.js");
const run = promisify(execFile);

/** name -> BROKEN_VARIANT number, read from broken.ts (`export const BROKEN_<NAME>: i32 = <n>;`) */
export function brokenVariants() {
  const text = readFileSync(join(root, "assembly/policies/broken.ts"), "utf8");
  return [...text.matchAll(/export const BROKEN_([A-Z0-9_]+): i32 = (\d+);/g)].map(([, name, n]) => ({
    name: name.toLowerCase().replace(/_/g, "-"),
    variant: Number(n),
  }));
}

export async function buildBroken(names) {
  const out = join(root, "build/broken");
  mkdirSync(out, { recursive: true });
  const queue = brokenVariants().filter((v) => !names || names.includes(v.name));
  const workers = Math.max(1, Math.min(cpus().length, queue.length));
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let v = queue.shift(); v; v = queue.shift()) {
        await run(process.execPath, [asc, "assembly/index.ts", "--outFile", join(out, `${v.name}.wasm`), "--runtime", "stub", "--optimizeLevel", "1", "--use", `BROKEN_VARIANT=${v.variant}`], { cwd: root });
        process.stderr.write(`built build/broken/${v.name}.wasm\n`);
      }
    }),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildBroken(process.argv.slice(2).length ? process.argv.slice(2) : undefined);
