import { mkdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Corpus } from "./corpus.js";
import { DEFAULT_LIMITS, IsolatedImporter, type IsolationLimits } from "./isolated-importer.js";
import { makeInput, type FuzzInput, type Importer } from "./inputs.js";
import { HOSTILE_CLASSES } from "./hostile-shapes.js";
import { ARROW_HOSTILE_CLASSES } from "./arrow-hostile-shapes.js";

const SHAPE_CLASSES: readonly string[] = [...HOSTILE_CLASSES, ...ARROW_HOSTILE_CLASSES];
import { traceInvariantViolation } from "./trace-invariants.js";

/**
 * What an importer must do with any input: accept it as a well-formed trace (trace-invariants.ts),
 * or reject it with a TraceError whose message is one clear line naming the file. Anything else is a
 * failure: another exception type (a crash), a message on several lines or without the file's name
 * or exposing JavaScript internals, an accepted trace that breaks the model's invariants, no answer
 * within the time limit (a hang), or a worker that died (memory exhausted). See isolated-importer.ts.
 */
export type Verdict =
  | { kind: "accepted"; events: number }
  | { kind: "rejected"; message: string }
  | { kind: "failure"; detail: string };

/** messages longer than this are not "one clear line" */
const MAX_MESSAGE_CHARS = 600;

/**
 * Imports one input in the isolated importer: through a file and readTrace when `viaFile`, else in
 * memory with parseTrace (the same decoders without the file system; one input in 16 goes through a
 * file), and judges the outcome. `windowBytes`: a pickle is read in windows of that many bytes (the
 * streaming reader's cuts, anywhere in an opcode), else in the default window.
 */
export async function importOnce(importer: IsolatedImporter, input: FuzzInput, dir: string, viaFile: boolean, windowBytes?: number): Promise<Verdict> {
  const file = join(dir, `input${input.extension}`);
  const o = await importer.import(input.bytes, file, viaFile, input.limits, windowBytes);
  switch (o.kind) {
    case "hang":
      return { kind: "failure", detail: `no answer after ${o.afterMs} ms (a hang)` };
    case "died":
      return { kind: "failure", detail: `the importer died (memory exhausted?): ${o.detail}` };
    case "error": {
      const m = o.message;
      if (!o.traceError) return { kind: "failure", detail: `threw ${o.name} instead of a TraceError: ${m.slice(0, 300)}` };
      if (o.internal) return { kind: "failure", detail: `an internal error reached the importer's catch-all: ${m.slice(0, 300)}` };
      if (m.includes("\n")) return { kind: "failure", detail: `TraceError message has several lines: ${JSON.stringify(m.slice(0, 300))}` };
      if (!m.includes(file) && !m.includes(basename(file))) return { kind: "failure", detail: `TraceError message does not name the file: ${m.slice(0, 300)}` };
      if (m.length > MAX_MESSAGE_CHARS) return { kind: "failure", detail: `TraceError message of ${m.length} characters: ${m.slice(0, 200)}...` };
      if (/\[object |\bundefined\b|intermediate value/.test(m)) return { kind: "failure", detail: `unclear TraceError message: ${m}` };
      return { kind: "rejected", message: m.slice(file.length + 2) };
    }
    case "trace": {
      const why = traceInvariantViolation(o.trace);
      if (why) return { kind: "failure", detail: `accepted a trace that breaks the model: ${why}` };
      return { kind: "accepted", events: o.trace.devices.reduce((n, d) => n + d.events.length, 0) };
    }
  }
}

export interface FuzzFailure {
  importer: Importer;
  seed: number;
  index: number;
  recipe: string;
  detail: string;
  /** where the input was saved, to run again with `lakebed info FILE` */
  savedAs: string;
}

export interface FuzzStats {
  importer: Importer;
  seed: number;
  inputs: number;
  accepted: number;
  rejected: number;
  failures: FuzzFailure[];
  /** rejection messages with numbers and names blanked out, by count */
  messages: Map<string, number>;
  /** inputs of each hostile shape class (hostile-shapes.ts), and how they ended */
  classes: Map<string, ClassStats>;
}

export interface ClassStats {
  inputs: number;
  accepted: number;
  rejected: number;
  failures: number;
}

export interface FuzzOptions {
  seed: number;
  /** inputs to try (from index `start`) */
  inputs: number;
  start?: number;
  /** scratch folder for input files */
  dir: string;
  /** folder for failing inputs; default `dir`/failures */
  failureDir?: string;
  /** stop at this time (Date.now() milliseconds) even if inputs remain */
  deadlineMs?: number;
  /** called after each input, with its index */
  onInput?: (index: number) => void;
  limits?: IsolationLimits;
}

export async function fuzzImporter(importer: Importer, corpus: Corpus, options: FuzzOptions): Promise<FuzzStats> {
  const stats: FuzzStats = { importer, seed: options.seed, inputs: 0, accepted: 0, rejected: 0, failures: [], messages: new Map(), classes: new Map() };
  mkdirSync(options.dir, { recursive: true });
  const start = options.start ?? 0;
  const isolated = new IsolatedImporter(options.limits ?? DEFAULT_LIMITS);
  try {
    for (let k = start; k < start + options.inputs; k++) {
      if (options.deadlineMs !== undefined && Date.now() >= options.deadlineMs) break;
      await fuzzOne(importer, corpus, options, stats, isolated, k);
      options.onInput?.(k);
    }
  } finally {
    await isolated.close();
  }
  return stats;
}

async function fuzzOne(importer: Importer, corpus: Corpus, options: FuzzOptions, stats: FuzzStats, isolated: IsolatedImporter, k: number): Promise<void> {
  const input = makeInput(importer, corpus, options.seed, k);
  // an input that makes V8 abort the whole process (not only the worker) leaves its number behind
  writeFileSync(join(options.dir, "in-flight.txt"), `${importer} seed ${options.seed} input ${k} (${input.recipe})\n`);
  // every other input is read in small windows of 1 to 4,096 bytes, a function of its number, and
  // at most 256 windows (each window costs a few microseconds of setup; a 1-byte window on a
  // 100 KB input would make it the slowest input of the campaign)
  const windowBytes = k % 2 === 1 ? Math.max(1 + (Math.imul(k, 2654435761) >>> 20), Math.ceil(input.bytes.length / 256)) : undefined;
  const v = await importOnce(isolated, input, options.dir, k % 16 === 0, windowBytes);
  stats.inputs++;
  const shapeClass = SHAPE_CLASSES.find((c) => input.recipe.startsWith(`${c}(`));
  if (shapeClass !== undefined) {
    const c = stats.classes.get(shapeClass) ?? { inputs: 0, accepted: 0, rejected: 0, failures: 0 };
    c.inputs++;
    c[v.kind === "accepted" ? "accepted" : v.kind === "rejected" ? "rejected" : "failures"]++;
    stats.classes.set(shapeClass, c);
  }
  if (v.kind === "accepted") stats.accepted++;
  else if (v.kind === "rejected") {
    stats.rejected++;
    const pattern = normalizeMessage(v.message);
    stats.messages.set(pattern, (stats.messages.get(pattern) ?? 0) + 1);
  } else {
    const failureDir = options.failureDir ?? join(options.dir, "failures");
    mkdirSync(failureDir, { recursive: true });
    const savedAs = join(failureDir, `${importer}-seed${options.seed}-input${k}${input.extension}`);
    writeFileSync(savedAs, input.bytes);
    stats.failures.push({ importer, seed: options.seed, index: k, recipe: input.recipe, detail: v.detail, savedAs });
  }
}

/** a rejection message with its specifics blanked, so that messages group by kind */
export function normalizeMessage(m: string): string {
  return m
    .replace(/"[^"]*"|'[^']*'/g, "'…'")
    .replace(/0x[0-9a-f]+/gi, "N")
    .replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/gi, "N")
    .slice(0, 140);
}
