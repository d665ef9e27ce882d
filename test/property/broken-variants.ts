import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { wasmModule, type PolicyName } from "@lakebed/core-sim";
import { repoRoot } from "../support/shared-traces.js";
import type { PolicyUnderTest } from "./allocator-under-test.js";
import { coreSimPolicy, type CoreSimBuild } from "./core-sim-adapter.js";
import { POLICY_SUITES } from "./policy-suites.js";
import { checkProperty, type PropertyName } from "./properties.js";

/**
 * The harness's self-check: deliberately broken builds of the policies (packages/core-sim/assembly/
 * policies/broken.ts: an off-by-one in a split, a merge of non-adjacent blocks, a stitched block that
 * forgets a chunk, missed stats updates, ...) must each fail the very property runs `npm test` makes
 * (the same seed and run counts), and this says which guarantee caught each one and after how many
 * runs. The variants are one module built by core-sim's `build:test` task (scripts/build-test.mjs),
 * which `npm test` runs before the tests; the test never compiles Wasm itself.
 */
const CORE_SIM = join(repoRoot, "packages/core-sim");
const TEST_BUILD = join(CORE_SIM, "build/test");
const REBUILD = "run 'npm run build:test -w @lakebed/core-sim' (npm test does)";

export interface BrokenVariant {
  /** e.g. "caching-split-off-by-one" (BROKEN_CACHING_SPLIT_OFF_BY_ONE) */
  name: string;
  /** its number in broken.ts, the value of the module's env.brokenVariant */
  variant: number;
  policy: PolicyName;
}

/** The variants the test build holds; throws, saying what to run, when it is missing or stale. */
export function brokenVariants(): BrokenVariant[] {
  const list = join(TEST_BUILD, "broken-variants.json");
  if (!existsSync(list)) throw new Error(`${list} is missing: ${REBUILD}`);
  const builtMs = statSync(list).mtimeMs;
  if (newestMtime(join(CORE_SIM, "assembly")) > builtMs) throw new Error(`${TEST_BUILD} is older than packages/core-sim/assembly: ${REBUILD}`);
  return JSON.parse(readFileSync(list, "utf8")) as BrokenVariant[];
}

/** The broken-variants module, instantiated with one variant switched on. */
export function brokenBuild(v: BrokenVariant): CoreSimBuild {
  return { module: wasmModule(pathToFileURL(join(TEST_BUILD, "core-sim-broken.wasm"))), globals: { brokenVariant: v.variant } };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

export interface Catch {
  variant: string;
  /** the policy setting whose runs caught it, null when none did */
  caughtBy: string | null;
  property: PropertyName | null;
  guarantee: string | null;
  /** for G-VALID: which level of the policy's isValid() caught it, the local check or the whole walk */
  level: "local" | "walk" | null;
  /** runs of that property up to and including the first failing one */
  runsNeeded: number | null;
}

/**
 * Runs the quick pass's properties (commands, then workloads; each setting of the variant's policy)
 * on one broken variant until one fails. Without shrinking: only the run that fails first matters.
 * The settings are searched side by side in growing batches of runs (RUN_BATCHES, then all of the
 * quick pass's), so a mistake only one setting reaches (vms-stitch-forgets-chunk needs fragLimit)
 * is found after that setting's few runs instead of after every run of the settings before it. Run
 * k of a setting is the same program in every batch (fast-check draws it from the seed), so what is
 * reported is the quick pass's own run that fails. With `withoutIsValid` the policy's own isValid()
 * is ignored, so that only the reference model's guarantees can catch it (a policy's invariant walk
 * shares its author's blind spots).
 */
const RUN_BATCHES = [8, 32];

export function catchVariant(v: BrokenVariant, runs: Record<PropertyName, number>, seed: number, withoutIsValid = false): Catch {
  const suites = POLICY_SUITES.filter((s) => s.policy === v.policy).map((suite) => {
    const base = coreSimPolicy(suite.policy, suite.conf, brokenBuild(v), `${v.name}${suite.conf ? `[${suite.conf}]` : ""}`);
    return { name: base.name, policy: withoutIsValid ? ignoringIsValid(base) : base };
  });
  for (const property of ["commands", "workloads"] as PropertyName[]) {
    const batches = [...RUN_BATCHES.filter((n) => n < runs[property]), runs[property]];
    for (const numRuns of batches) {
      for (const { name, policy } of suites) {
        const f = checkProperty(policy, property, { numRuns, seed, noShrink: true }).failure;
        if (f) {
          const level = f.guarantee !== "G-VALID" ? null : f.message.includes("(the local check)") ? "local" : "walk";
          return { variant: v.name, caughtBy: name, property, guarantee: f.guarantee, level, runsNeeded: f.failedAtRun };
        }
      }
    }
  }
  return { variant: v.name, caughtBy: null, property: null, guarantee: null, level: null, runsNeeded: null };
}

function ignoringIsValid(p: PolicyUnderTest): PolicyUnderTest {
  return {
    ...p,
    create: () => {
      const a = p.create();
      a.isValid = () => true;
      return a;
    },
  };
}
