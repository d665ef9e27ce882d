import type { PolicyUnderTest } from "./allocator-under-test.js";
import { checkProperty, formatOutcome, type PropertyName, type PropertyOutcome } from "./properties.js";

/**
 * A long property campaign on one policy: rounds of `runsPerRound` runs, alternating the two
 * properties and the policy's settings, each round with its own seed (seed, seed + 1, ...), until the
 * run budget or the time budget is spent or a round fails. Every round is reproducible alone from its
 * seed: `LAKEBED_SEED=<seed> LAKEBED_RUNS=<runs> npx vitest run test/property/policies.test.ts`
 * replays the quick pass under it, and the failure's trace file replays with `lakebed replay`.
 */
export interface PolicyCampaignOptions {
  seed: number;
  /** total runs across every round (Infinity: until the time budget) */
  runs: number;
  deadlineMs: number;
  runsPerRound?: number;
  failureDir: string;
  onRound?: (round: RoundResult, totals: PolicyCampaignResult) => void;
}

export interface RoundResult {
  policy: string;
  property: PropertyName;
  seed: number;
  runs: number;
  failure: string | null;
}

export interface PolicyCampaignResult {
  runs: number;
  rounds: number;
  seconds: number;
  runsByProperty: Record<PropertyName, number>;
  firstSeed: number;
  lastSeed: number;
  failures: { policy: string; property: PropertyName; seed: number; failedAtRun: number; guarantee: string; message: string; traceFile: string; replayCommand: string; report: string }[];
}

const PROPERTIES: PropertyName[] = ["commands", "workloads"];

export function runPolicyCampaign(variants: readonly PolicyUnderTest[], o: PolicyCampaignOptions): PolicyCampaignResult {
  const perRound = o.runsPerRound ?? 100;
  const started = Date.now();
  const r: PolicyCampaignResult = { runs: 0, rounds: 0, seconds: 0, runsByProperty: { commands: 0, workloads: 0 }, firstSeed: o.seed, lastSeed: o.seed, failures: [] };
  while (r.runs < o.runs && Date.now() < o.deadlineMs && r.failures.length === 0) {
    const policy = variants[r.rounds % variants.length];
    const property = PROPERTIES[Math.floor(r.rounds / variants.length) % PROPERTIES.length];
    const seed = o.seed + r.rounds;
    const numRuns = Math.min(perRound, o.runs - r.runs);
    const outcome: PropertyOutcome = checkProperty(policy, property, { numRuns, seed, failureDir: o.failureDir });
    r.rounds++;
    r.runs += outcome.numRuns;
    r.runsByProperty[property] += outcome.numRuns;
    r.lastSeed = seed;
    r.seconds = (Date.now() - started) / 1000;
    const f = outcome.failure;
    if (f) {
      r.failures.push({
        policy: policy.name,
        property,
        seed,
        failedAtRun: f.failedAtRun,
        guarantee: f.guarantee,
        message: f.message,
        traceFile: f.traceFile,
        replayCommand: f.replayCommand,
        report: formatOutcome(outcome),
      });
    }
    o.onRound?.({ policy: policy.name, property, seed, runs: outcome.numRuns, failure: f ? formatOutcome(outcome) : null }, r);
  }
  r.seconds = (Date.now() - started) / 1000;
  return r;
}
