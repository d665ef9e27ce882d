// A colocation scenario: several traces as tenants of one device. The file is small JSON; this
// module is the one place that says what it may hold (a zod schema) and turns a bad file into one
// line naming the file, the JSON path and what was expected.
//
//   {
//     "capacity": "16GiB",                 device memory shared by every tenant
//     "durationS": 20,                     simulated seconds
//     "seed": 1,                           default seed of the tenants (arrivals, segment choice)
//     "sloMs": 5,                          inference memory-acquire SLO (default 5 ms)
//     "tenants": [
//       { "name": "train", "trace": "../access/gpt2_train.def.pickle.gz", "tags": ["training"],
//         "priority": 0, "startS": 0 },
//       { "name": "infer-0", "trace": "../access/llama_infer.def.pickle.gz", "tags": ["inference"],
//         "priority": 1, "arrivals": { "poissonPerS": 2 }, "seed": 7 } ] }
//
// A training tenant runs its trace's steps back to back from startS (the first training tenant is
// the one that lends memory to inference in a handover); an inference tenant's
// requests arrive as a Poisson process, and each request replays one segment of its trace
// (trace-segments.ts says how segments are found; a request takes one of them by the tenant's
// seeded generator).
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { POLICY_NAMES, type PolicyName } from "@lakebed/core-sim/policies";
import { parseBytes } from "../units.js";

const bytes = z.union([z.number().int().positive(), z.string().min(1)]);

const tenantSchema = z.strictObject({
  name: z.string().min(1).max(64),
  /** a trace file, relative to the scenario file */
  trace: z.string().min(1),
  tags: z.array(z.enum(["training", "inference"])).length(1),
  /** a tenant may take memory from the lender (the first training tenant) only with a higher priority; default: inference 1, training 0 (Sirius' order) */
  priority: z.number().int().min(0).max(100).optional(),
  /** the policy that manages this tenant's memory (default: caching, PyTorch's) */
  policy: z.enum(POLICY_NAMES as [PolicyName, ...PolicyName[]]).optional(),
  /** training: when its first step starts; inference: when requests start arriving */
  startS: z.number().min(0).default(0),
  /** inference only: Poisson arrivals */
  arrivals: z.strictObject({ poissonPerS: z.number().positive().max(1000) }).optional(),
  seed: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  /** content fingerprints of its parameters (python/lakebed_record.py), relative to the scenario file; default: TRACE's NAME.fingerprints.json where there is one */
  fingerprints: z.string().min(1).optional(),
});

const scenarioSchema = z.strictObject({
  capacity: bytes,
  durationS: z.number().positive().max(3600),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(1),
  sloMs: z.number().positive().default(5),
  /** Sirius' reserve rule: W (the reallocation watermark) and T_idle */
  reserve: z
    .strictObject({ watermark: bytes.optional(), idleS: z.number().positive().optional(), sloTarget: z.number().min(0).max(1).optional() })
    .default({}),
  tenants: z.array(tenantSchema).min(1).max(64),
});

export type TenantKind = "training" | "inference";

export interface TenantSpec {
  name: string;
  /** absolute path of its trace */
  trace: string;
  kind: TenantKind;
  priority: number;
  policy: PolicyName;
  startS: number;
  /** requests a second (inference) */
  arrivalsPerS: number;
  seed: number;
  /** absolute path of its fingerprints, or null: none */
  fingerprints: string | null;
}

export interface Scenario {
  file: string;
  capacityBytes: number;
  durationS: number;
  sloMs: number;
  /** W in bytes, or null: planned from the M/G/1 estimate (reserve-plan.ts) */
  watermarkBytes: number | null;
  idleS: number;
  /** the share of requests the reserve plan aims to keep within the SLO */
  sloTarget: number;
  tenants: TenantSpec[];
}

/** A scenario file that does not say what it must: one line (file, JSON path, what was expected). */
export class ScenarioError extends Error {
  override readonly name = "ScenarioError";
}

/** Sirius' evaluation settings (T_idle 5 s, a 90% SLO target); W is planned when not given. */
const DEFAULT_IDLE_S = 5;
const DEFAULT_SLO_TARGET = 0.9;

export function readScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ScenarioError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ScenarioError(`${file}: not JSON (${(e as Error).message})`);
  }
  return parseScenario(json, file);
}

export function parseScenario(json: unknown, file: string): Scenario {
  const parsed = scenarioSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ScenarioError(`${file}: ${jsonPath(issue.path)}: ${issue.message}`);
  }
  const s = parsed.data;
  const at = (path: (string | number)[], what: string) => new ScenarioError(`${file}: ${jsonPath(path)}: ${what}`);
  const size = (value: number | string, path: (string | number)[]) => {
    if (typeof value === "number") return value;
    try {
      return parseBytes(value);
    } catch {
      throw at(path, `expected a size such as 16GiB or 17179869184, got '${value.slice(0, 40)}'`);
    }
  };
  const names = new Set<string>();
  const base = dirname(resolve(file));
  const tenants = s.tenants.map((t, i): TenantSpec => {
    if (names.has(t.name)) throw at(["tenants", i, "name"], `'${t.name}' names two tenants`);
    names.add(t.name);
    const kind = t.tags[0];
    if (kind === "inference" && t.arrivals === undefined) throw at(["tenants", i, "arrivals"], "an inference tenant needs arrivals: {\"poissonPerS\": rate}");
    if (kind === "training" && t.arrivals !== undefined) throw at(["tenants", i, "arrivals"], "a training tenant runs its steps back to back; arrivals are for inference tenants");
    return {
      name: t.name,
      trace: resolve(base, t.trace),
      kind,
      priority: t.priority ?? (kind === "inference" ? 1 : 0),
      policy: t.policy ?? "caching",
      startS: t.startS,
      arrivalsPerS: t.arrivals?.poissonPerS ?? 0,
      seed: t.seed ?? s.seed + i,
      fingerprints: t.fingerprints !== undefined ? resolve(base, t.fingerprints) : besideTrace(resolve(base, t.trace)),
    };
  });
  return {
    file,
    capacityBytes: size(s.capacity, ["capacity"]),
    durationS: s.durationS,
    sloMs: s.sloMs,
    watermarkBytes: s.reserve.watermark === undefined ? null : size(s.reserve.watermark, ["reserve", "watermark"]),
    idleS: s.reserve.idleS ?? DEFAULT_IDLE_S,
    sloTarget: s.reserve.sloTarget ?? DEFAULT_SLO_TARGET,
    tenants,
  };
}

/** NAME.fingerprints.json beside NAME.pickle.gz (or .pickle, .json, .arrow), where it exists. */
function besideTrace(trace: string): string | null {
  const f = `${trace.replace(/\.(pickle\.gz|pickle|json\.gz|json|arrow)$/, "")}.fingerprints.json`;
  return existsSync(f) ? f : null;
}

/** $.tenants[2].arrivals, the way a JSON path names a place in the file. */
function jsonPath(path: PropertyKey[]): string {
  return "$" + path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
}
