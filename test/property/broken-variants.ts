import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../support/shared-traces.js";
import type { PolicyUnderTest } from "./allocator-under-test.js";
import { coreSimPolicy, type CoreSimPolicyName } from "./core-sim-adapter.js";
import { POLICY_SUITES } from "./policy-suites.js";
import { checkProperty, type PropertyName } from "./properties.js";

/**
 * The harness's self-check: deliberately broken builds of the policies (packages/core-sim/assembly/
 * policies/broken.ts: an off-by-one in a split, a merge of non-adjacent blocks, a stitched block that
 * forgets a chunk, missed stats updates, ...) must each fail the very property runs `npm test` makes
 * (the same seed and run counts), and this says which guarantee caught each one and after how many
 * runs. The variants are built only for this (packages/core-sim/scripts/build-broken.mjs).
 */
const CORE_SIM = join(repoRoot, "packages/core-sim");
const BROKEN_DIR = join(CORE_SIM, "build/broken");

export interface BrokenVariant {
  /** e.g. "caching-split-off-by-one" (BROKEN_CACHING_SPLIT_OFF_BY_ONE) */
  name: string;
  policy: CoreSimPolicyName;
  wasmFile: string;
}

export function brokenVariants(): BrokenVariant[] {
  const text = readFileSync(join(CORE_SIM, "assembly/policies/broken.ts"), "utf8");
  return [...text.matchAll(/export const BROKEN_([A-Z0-9_]+): i32 = \d+;/g)].map(([, constant]) => {
    const name = constant.toLowerCase().replace(/_/g, "-");
    const policy = name.split("-")[0] as CoreSimPolicyName;
    return { name, policy, wasmFile: join(BROKEN_DIR, `${name}.wasm`) };
  });
}

/** Builds the variants when one is missing or older than the policy sources. */
export function ensureBrokenBuilds(): void {
  const newestSource = newestMtime(join(CORE_SIM, "assembly"));
  const stale = brokenVariants().some((v) => !existsSync(v.wasmFile) || statSync(v.wasmFile).mtimeMs < newestSource);
  if (stale) execFileSync(process.execPath, [join(CORE_SIM, "scripts/build-broken.mjs")], { stdio: "inherit" });
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
  /** runs of that property up to and including the first failing one */
  runsNeeded: number | null;
}

/**
 * Runs the quick pass's properties (commands, then workloads; each setting of the variant's policy)
 * on one broken variant until one fails. Without shrinking: only the run that fails first matters.
 * With `withoutIsValid` the policy's own isValid() is ignored, so that only the reference model's
 * guarantees can catch it (a policy's invariant walk shares its author's blind spots).
 */
export function catchVariant(v: BrokenVariant, runs: Record<PropertyName, number>, seed: number, withoutIsValid = false): Catch {
  for (const property of ["commands", "workloads"] as PropertyName[]) {
    for (const suite of POLICY_SUITES.filter((s) => s.policy === v.policy)) {
      const base = coreSimPolicy(suite.policy, suite.conf, v.wasmFile, `${v.name}${suite.conf ? `[${suite.conf}]` : ""}`);
      const policy = withoutIsValid ? ignoringIsValid(base) : base;
      const o = checkProperty(policy, property, { numRuns: runs[property], seed, noShrink: true });
      if (o.failure) return { variant: v.name, caughtBy: base.name, property, guarantee: o.failure.guarantee, runsNeeded: o.failure.failedAtRun };
    }
  }
  return { variant: v.name, caughtBy: null, property: null, guarantee: null, runsNeeded: null };
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
