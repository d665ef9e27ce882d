import fc from "fast-check";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeOp, type Op } from "../generators/program.js";
import { workloadArb, type Workload } from "../generators/workloads.js";
import type { PolicyUnderTest } from "./allocator-under-test.js";
import { checkProgram, StepFailure } from "./checked-allocator.js";
import { allocatorCommands, programOf, runCommands } from "./commands.js";
import { minimizeProgram } from "./minimize.js";
import { capacityForReplay, programToSnapshotJson } from "./trace-file.js";

/**
 * The two properties every policy must hold, run with fc.check so that a failure comes back as data:
 *  - "commands": model-based, random alloc/free/empty_cache/limit sequences (commands.ts);
 *  - "workloads": programs that look like real jobs (../generators/workloads.ts).
 * On a failure the counterexample is shrunk by fast-check, then by minimizeProgram, and written as a
 * snapshot JSON that `lakebed replay` runs; the outcome says where, with the seed to reproduce it.
 */
export type PropertyName = "commands" | "workloads";

export interface PropertyOptions {
  numRuns: number;
  seed: number;
  /** stop at the first failure without shrinking (for counting runs to a failure) */
  noShrink?: boolean;
  /** where to write the failing trace; default: $LAKEBED_FAILURE_DIR or <tmpdir>/lakebed-failures */
  failureDir?: string;
  maxCommands?: number;
}

export interface PropertyFailure {
  guarantee: string;
  /** the failure of the minimal program, as the harness words it */
  message: string;
  /** the run (1-based) that first failed */
  failedAtRun: number;
  minimal: Op[];
  traceFile: string;
  replayCommand: string;
}

export interface PropertyOutcome {
  policy: string;
  property: PropertyName;
  seed: number;
  /** runs made (up to and including the first failing one) */
  numRuns: number;
  failure: PropertyFailure | null;
}

export function commandsProperty(policy: PolicyUnderTest, maxCommands = 120) {
  return fc.property(allocatorCommands(maxCommands), (cmds) => {
    runCommands(policy, cmds);
  });
}

export function workloadsProperty(policy: PolicyUnderTest) {
  return fc.property(workloadArb, (w: Workload) => {
    checkProgram(policy, w.ops);
  });
}

export function checkProperty(policy: PolicyUnderTest, property: PropertyName, options: PropertyOptions): PropertyOutcome {
  const prop = property === "commands" ? commandsProperty(policy, options.maxCommands) : workloadsProperty(policy);
  // both properties are synchronous, so fc.check gives its details at once (not a Promise)
  const details = fc.check(prop as fc.IRawProperty<unknown[]>, { numRuns: options.numRuns, seed: options.seed, endOnFailure: options.noShrink ?? false }) as fc.RunDetails<unknown[]>;
  const outcome: PropertyOutcome = { policy: policy.name, property, seed: options.seed, numRuns: details.numRuns, failure: null };
  if (!details.failed || !details.counterexample) {
    if (details.failed) throw new Error(`fast-check failed without a counterexample (seed ${options.seed}): ${String(details.errorInstance)}`);
    return outcome;
  }
  const program =
    property === "commands"
      ? programOf(policy, details.counterexample[0] as Iterable<fc.Command<never, never>>)
      : (details.counterexample[0] as Workload).ops;
  outcome.failure = describeFailure(policy, program, details.numRuns, options);
  return outcome;
}

/** The failure a program causes, minimised and written out; null if it does not fail. */
export function describeFailure(policy: PolicyUnderTest, program: Op[], failedAtRun: number, options: Pick<PropertyOptions, "failureDir" | "seed">): PropertyFailure {
  const first = failureOf(policy, program);
  if (!first) throw new Error(`the counterexample of ${policy.name} (seed ${options.seed}) did not fail again: the policy is not deterministic`);
  const minimal = minimizeProgram(program, (ops) => failureOf(policy, ops)?.guarantee === first.guarantee);
  const failure = failureOf(policy, minimal) ?? first;
  const dir = options.failureDir ?? process.env.LAKEBED_FAILURE_DIR ?? join(tmpdir(), "lakebed-failures");
  mkdirSync(dir, { recursive: true });
  const traceFile = join(dir, `${policy.name.replace(/[^\w.-]+/g, "_")}-seed${options.seed}-${first.guarantee}.json`);
  writeFileSync(traceFile, programToSnapshotJson(minimal));
  const capacity = capacityForReplay(minimal);
  const conf = policy.conf ? ` --conf ${policy.conf}` : "";
  const replayCommand = `lakebed replay ${traceFile} --policy ${policy.replayPolicy ?? policy.name}${conf}${capacity === null ? "" : ` --capacity ${capacity}`} --check full`;
  return { guarantee: failure.guarantee, message: failure.message, failedAtRun, minimal, traceFile, replayCommand };
}

function failureOf(policy: PolicyUnderTest, ops: Op[]): StepFailure | null {
  try {
    checkProgram(policy, ops);
    return null;
  } catch (e) {
    if (e instanceof StepFailure) return e;
    throw e;
  }
}

/** A failure in words, for a test's assertion message and the campaign summary. */
export function formatOutcome(o: PropertyOutcome): string {
  if (!o.failure) return `${o.policy} ${o.property}: ${o.numRuns} runs passed (seed ${o.seed})`;
  const f = o.failure;
  return [
    `${o.policy} ${o.property} failed at run ${f.failedAtRun} (seed ${o.seed}; rerun with LAKEBED_SEED=${o.seed}):`,
    `  ${f.message}`,
    `  minimal program (${f.minimal.length} steps): ${f.minimal.map(describeOp).join("; ")}`,
    `  trace: ${f.traceFile}`,
    `  replay: ${f.replayCommand}`,
  ].join("\n");
}
