import { describe, expect, it } from "vitest";
import { checkProperty, formatOutcome, type PropertyName } from "./properties.js";
import { POLICY_SUITES, suitePolicy } from "./policy-suites.js";
import { QUICK_RUNS, QUICK_SEED } from "./quick-pass.js";

/**
 * The quick pass of the model-based suite: every core-sim policy, under each setting in
 * policy-suites.ts, holds every guarantee (guarantees.ts) on random command sequences and on
 * programs that look like real jobs. A failure prints the seed, the minimal program, and the trace
 * file and `lakebed replay` command that reproduce it. Long campaigns: `npm run campaign`.
 */
const PROPERTIES: PropertyName[] = ["commands", "workloads"];

describe("every policy holds the allocator guarantees", () => {
  for (const suite of POLICY_SUITES) {
    const policy = suitePolicy(suite);
    for (const property of PROPERTIES) {
      it(`${policy.name}: ${property}, ${QUICK_RUNS[property]} runs`, () => {
        const o = checkProperty(policy, property, { numRuns: QUICK_RUNS[property], seed: QUICK_SEED });
        expect(o.failure, formatOutcome(o)).toBeNull();
        expect(o.numRuns).toBe(QUICK_RUNS[property]);
      });
    }
  }
});
