import { describe, expect, it } from "vitest";
import { brokenVariants, catchVariant, type Catch } from "./broken-variants.js";
import { QUICK_RUNS, QUICK_SEED } from "./quick-pass.js";

/**
 * The harness can fail: every deliberately broken policy variant fails the quick pass's own runs
 * (same seed, same counts as policies.test.ts). The table of what caught each, and after how many
 * runs, is printed; docs/harness.md keeps it.
 */
describe("the harness catches every broken policy variant", () => {
  const caught = new Map<string, { all: Catch; model: Catch }>();

  for (const v of brokenVariants()) {
    it(`catches ${v.name}, with and without the policy's own isValid()`, () => {
      const all = catchVariant(v, QUICK_RUNS, QUICK_SEED);
      const model = catchVariant(v, QUICK_RUNS, QUICK_SEED, true);
      caught.set(v.name, { all, model });
      const runs = `${QUICK_RUNS.commands} command runs and ${QUICK_RUNS.workloads} workload runs of every ${v.policy} setting`;
      expect(all.caughtBy, `${v.name} passed ${runs}`).not.toBeNull();
      expect(model.caughtBy, `${v.name} passed ${runs} when only the reference model judged`).not.toBeNull();
    });
  }

  it("reports how many runs each needed", () => {
    const cell = (c: Catch) => (c.caughtBy === null ? "not caught" : `${c.guarantee}${c.level ? ` (${c.level})` : ""}, ${c.property} run ${c.runsNeeded}`);
    const rows = [...caught].map(([name, { all, model }]) => `| ${name} | ${all.caughtBy} | ${cell(all)} | ${cell(model)} |`);
    console.log(["| variant | caught under | every guarantee | without isValid() |", "|---|---|---|---|", ...rows].join("\n"));
    expect(caught.size).toBe(brokenVariants().length);
  });
});
