import { describe, expect, it } from "vitest";
import { firstFitPolicy, type FirstFitBug } from "./first-fit.js";
import { checkProperty, formatOutcome, type PropertyName } from "./properties.js";
import { QUICK_SEED } from "./quick-pass.js";

/**
 * The harness on a subject it can see through: a plain first-fit allocator passes every guarantee,
 * and each of its deliberately broken versions fails one.
 */
describe("the harness on a plain first-fit allocator", () => {
  for (const property of ["commands", "workloads"] as PropertyName[]) {
    it(`first-fit passes ${property}`, () => {
      const o = checkProperty(firstFitPolicy(), property, { numRuns: 100, seed: QUICK_SEED });
      expect(o.failure, formatOutcome(o)).toBeNull();
    });
  }

  const bugs: FirstFitBug[] = ["split-off-by-one", "merge-non-adjacent", "missed-stats", "cross-stream", "leak-on-release"];
  for (const bug of bugs) {
    it(`catches first-fit[${bug}]`, () => {
      const o = checkProperty(firstFitPolicy(bug), "commands", { numRuns: 200, seed: QUICK_SEED });
      expect(o.failure, formatOutcome(o)).not.toBeNull();
      console.log(formatOutcome(o));
    });
  }
});
