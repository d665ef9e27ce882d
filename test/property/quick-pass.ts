/**
 * Run counts and the seed for the quick pass in `npm test`. The seed is fixed so that CI is
 * reproducible; set LAKEBED_SEED to explore other seeds. Long runs belong in scripts/campaign.mjs.
 *
 * Every broken policy variant fails within these counts (broken-variants.test.ts checks it; the
 * most any variant needed was 16 command runs), so they hold a margin of over ten; see
 * docs/harness.md.
 */
export const QUICK_SEED = Number(process.env.LAKEBED_SEED ?? 20261123);
export const QUICK_RUNS = {
  commands: Number(process.env.LAKEBED_RUNS ?? 200),
  workloads: Number(process.env.LAKEBED_RUNS ?? 100),
};
