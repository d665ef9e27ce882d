/**
 * Run counts and the seed for the quick pass in `npm test`. The seed is fixed so that CI is
 * reproducible; set LAKEBED_SEED to explore other seeds. Long runs belong in scripts/campaign.mjs.
 *
 * The counts are the smallest that still catch every broken variant (broken-variants.test.ts
 * checks that), with headroom; see the README's "Property tests and fuzzing" section.
 */
export const QUICK_SEED = Number(process.env.LAKEBED_SEED ?? 20261123);
export const QUICK_RUNS = {
  commands: Number(process.env.LAKEBED_RUNS ?? 200),
  workloads: Number(process.env.LAKEBED_RUNS ?? 100),
};
