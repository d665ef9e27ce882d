import type { AccessJson } from "./access-json.js";
import type { AllocatorSettings, Annotation, BlockState, DeviceTrace, PrivatePoolUse, SegmentState } from "./model.js";

/**
 * The `lakebed.trace` schema metadata of lakebed's Arrow trace file (arrow-format.ts): everything
 * the Trace model holds besides the event columns, as JSON (NaN written as null).
 *
 * A file may have been damaged or edited by hand, so the JSON is checked field by field against
 * this shape before anything reads it (validate.ts then checks the model's invariants, which assume
 * the shape). `arrowTraceMetaProblem` names the first field that does not fit, by its path.
 */
export interface DeviceMeta {
  device: number;
  events: number;
  /** raw cudaStream_t values, as decimal strings */
  streams: string[];
  initialState: DeviceTrace["initialState"];
  finalState: DeviceTrace["finalState"];
  complete: boolean;
  initialLiveBlocks: number;
  /** absent in files written before lakebed read `segment_pool_id` (format version unchanged): none */
  privatePools?: PrivatePoolUse[];
  /** use events (access-json.ts gives the shape and checks it); absent for a plain snapshot */
  access?: AccessJson;
}

export interface TraceMeta {
  legacy: boolean;
  allocatorSettings: AllocatorSettings | null;
  /** timeUs is null where it was NaN */
  annotations: (Omit<Annotation, "timeUs"> & { timeUs: number | null })[];
  source: { file: string; format: string; gzip: boolean };
  devices: DeviceMeta[];
}

type Check = (v: unknown, path: string) => string | null;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const describe = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "string" ? "a string" : typeof v === "object" ? "an object" : String(v));

const bool: Check = (v, p) => (typeof v === "boolean" ? null : `${p} must be true or false, not ${describe(v)}`);
const str: Check = (v, p) => (typeof v === "string" ? null : `${p} must be a string, not ${describe(v)}`);
const finite: Check = (v, p) => (typeof v === "number" && Number.isFinite(v) ? null : `${p} must be a number, not ${describe(v)}`);
const count: Check = (v, p) => (Number.isSafeInteger(v) && (v as number) >= 0 ? null : `${p} must be a whole number of 0 or more, not ${describe(v)}`);
const integer: Check = (v, p) => (Number.isSafeInteger(v) ? null : `${p} must be a whole number, not ${describe(v)}`);
const oneOf =
  (...values: string[]): Check =>
  (v, p) =>
    values.includes(v as string) ? null : `${p} must be one of ${values.join(", ")}, not ${describe(v)}`;
const orNull =
  (c: Check): Check =>
  (v, p) =>
    v === null ? null : c(v, p);
const decimal: Check = (v, p) => (typeof v === "string" && /^-?\d{1,20}$/.test(v) ? null : `${p} must be a decimal string, not ${describe(v)}`);
const arrayOf =
  (c: Check): Check =>
  (v, p) => {
    if (!Array.isArray(v)) return `${p} must be an array, not ${describe(v)}`;
    for (let i = 0; i < v.length; i++) {
      const problem = c(v[i], `${p}[${i}]`);
      if (problem) return problem;
    }
    return null;
  };
/** A field that may be absent; when present, `check` applies. */
const optional = (check: Check): Check => Object.assign((v: unknown, p: string) => check(v, p), { optional: true });
const record =
  (fields: Record<string, Check>): Check =>
  (v, p) => {
    if (!isObject(v)) return `${p} must be an object, not ${describe(v)}`;
    for (const [k, c] of Object.entries(fields)) {
      if (v[k] === undefined) {
        if ((c as { optional?: boolean }).optional) continue;
        return `${p}.${k} is missing`;
      }
      const problem = c(v[k], `${p}.${k}`);
      if (problem) return problem;
    }
    return null;
  };
const scalarMap: Check = (v, p) => {
  if (!isObject(v)) return `${p} must be an object, not ${describe(v)}`;
  for (const [k, x] of Object.entries(v)) if (!["string", "number", "boolean"].includes(typeof x)) return `${p}.${k} must be a string, number or boolean`;
  return null;
};

const block = record({ address: finite, size: finite, requestedSize: finite, state: oneOf("allocated", "pending_free", "inactive"), blockId: integer } satisfies Record<keyof BlockState, Check>);
const segment = record({
  address: finite,
  totalSize: finite,
  stream: count,
  pool: oneOf("small", "large"),
  expandable: bool,
  blocks: arrayOf(block),
} satisfies Record<keyof SegmentState, Check>);
const settings = record({
  conf: str,
  maxSplitSize: finite,
  garbageCollectionThreshold: finite,
  expandableSegments: bool,
  roundupPower2Divisions: arrayOf(count),
  raw: scalarMap,
} satisfies Record<keyof AllocatorSettings, Check>);
const deviceMeta = record({
  device: count,
  events: count,
  streams: arrayOf(decimal),
  initialState: arrayOf(segment),
  finalState: arrayOf(segment),
  complete: bool,
  initialLiveBlocks: count,
  privatePools: optional(
    arrayOf(
      record({
        id: (v, p) => (Array.isArray(v) && v.length === 2 ? arrayOf(count)(v, p) : `${p} must be a pair of pool ids`),
        kind: oneOf("cuda_graph", "mempool"),
        segments: count,
        bytes: finite,
      } satisfies Record<keyof PrivatePoolUse, Check>),
    ),
  ),
  // its fields are checked where it is read (accessFromJson), against the device's events too
  access: optional((v, p) => (typeof v === "object" && v !== null && !Array.isArray(v) ? null : `${p} must be an object, not ${describe(v)}`)),
} satisfies Record<keyof DeviceMeta, Check>);
const traceMeta = record({
  legacy: bool,
  allocatorSettings: orNull(settings),
  annotations: arrayOf(record({ name: str, stage: oneOf("START", "END"), device: integer, timeUs: orNull(finite) })),
  source: record({ file: str, format: str, gzip: bool }),
  devices: arrayOf(deviceMeta),
} satisfies Record<keyof TraceMeta, Check>);

/** null when `meta` has the shape of TraceMeta (and a segment's stream names one of its device's streams) */
export function arrowTraceMetaProblem(meta: unknown): string | null {
  const problem = traceMeta(meta, "lakebed.trace");
  if (problem) return problem;
  for (const [i, d] of (meta as TraceMeta).devices.entries()) {
    for (const [name, state] of [["initialState", d.initialState], ["finalState", d.finalState]] as const) {
      const bad = state.findIndex((s) => s.stream >= d.streams.length);
      if (bad >= 0) return `lakebed.trace.devices[${i}].${name}[${bad}].stream names no stream of the device`;
    }
  }
  return null;
}
