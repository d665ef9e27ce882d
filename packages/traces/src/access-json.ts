/**
 * Use events (model.ts, AccessColumns) as JSON, the form the Arrow trace file keeps them in: under
 * `access` in each device's entry of the `lakebed.trace` metadata (arrow-format.ts). Their rows are
 * not the file's rows (one per event), so they travel beside the columns, as the segment states do:
 *
 *   { operatorNames: [string],
 *     operators: { name: [int], position: [int], baseUs: number, startUs: [µs after baseUs], durationUs: [µs] },
 *     uses: { position: [int], blockId: [int], kind: [int], operator: [int] },
 *     join: { operatorsRecorded, operatorsBeforeTrace, resultsMatched, resultsUnmatched, tensorsUnresolved } }
 *
 * Reading checks the shape here and the invariants (access-valid.ts) against the device's events.
 */
import type { AccessColumns, AccessJoinSummary } from "./model.js";

export interface AccessJson {
  operatorNames: string[];
  operators: { name: number[]; position: number[]; baseUs: number; startUs: number[]; durationUs: number[] };
  uses: { position: number[]; blockId: number[]; kind: number[]; operator: number[] };
  join: AccessJoinSummary;
}

export function accessToJson(a: AccessColumns): AccessJson {
  const base = a.operators.length > 0 ? a.operators.startUs[0] : 0;
  return {
    operatorNames: a.operatorNames,
    operators: {
      name: Array.from(a.operators.name),
      position: Array.from(a.operators.position),
      baseUs: base,
      startUs: Array.from(a.operators.startUs, (t) => t - base),
      durationUs: Array.from(a.operators.endUs, (t, k) => t - a.operators.startUs[k]),
    },
    uses: { position: Array.from(a.uses.position), blockId: Array.from(a.uses.blockId), kind: Array.from(a.uses.kind), operator: Array.from(a.uses.operator) },
    join: a.join,
  };
}

const JOIN_FIELDS: (keyof AccessJoinSummary)[] = ["operatorsRecorded", "operatorsBeforeTrace", "resultsMatched", "resultsUnmatched", "tensorsUnresolved"];

/** The AccessColumns `v` describes, or a sentence saying which field of it (under `path`) is wrong. */
export function accessFromJson(v: unknown, path: string): AccessColumns | string {
  const obj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
  if (!obj(v) || !obj(v.operators) || !obj(v.uses) || !obj(v.join)) return `${path} must be an object with operators, uses and join`;
  if (!Array.isArray(v.operatorNames) || !v.operatorNames.every((n) => typeof n === "string")) return `${path}.operatorNames must be an array of strings`;
  const ints = (x: unknown, where: string): number[] | string =>
    Array.isArray(x) && x.every((y) => Number.isSafeInteger(y) && y >= 0 && y <= 0xffffffff) ? (x as number[]) : `${path}.${where} must be an array of whole numbers of 0 or more`;
  const o = v.operators;
  const u = v.uses;
  const columns = [ints(o.name, "operators.name"), ints(o.position, "operators.position"), ints(o.startUs, "operators.startUs"), ints(o.durationUs, "operators.durationUs"), ints(u.position, "uses.position"), ints(u.blockId, "uses.blockId"), ints(u.kind, "uses.kind"), ints(u.operator, "uses.operator")];
  const bad = columns.find((c): c is string => typeof c === "string");
  if (bad !== undefined) return bad;
  const [name, position, startUs, durationUs, usePosition, blockId, kind, operator] = columns as number[][];
  if (typeof o.baseUs !== "number" || !Number.isFinite(o.baseUs)) return `${path}.operators.baseUs must be a number`;
  if (position.length !== name.length || startUs.length !== name.length || durationUs.length !== name.length) return `${path}.operators: its columns differ in length`;
  if (blockId.length !== usePosition.length || kind.length !== usePosition.length || operator.length !== usePosition.length) return `${path}.uses: its columns differ in length`;
  const join = v.join;
  for (const f of JOIN_FIELDS) if (!Number.isSafeInteger(join[f]) || (join[f] as number) < 0) return `${path}.join.${f} must be a whole number of 0 or more`;
  const base = o.baseUs;
  return {
    operatorNames: v.operatorNames as string[],
    operators: {
      length: name.length,
      name: Uint32Array.from(name),
      position: Uint32Array.from(position),
      startUs: Float64Array.from(startUs, (t) => base + t),
      endUs: Float64Array.from(startUs, (t, k) => base + t + durationUs[k]),
    },
    uses: { length: usePosition.length, position: Uint32Array.from(usePosition), blockId: Int32Array.from(blockId), kind: Uint8Array.from(kind), operator: Uint32Array.from(operator) },
    join: Object.fromEntries(JOIN_FIELDS.map((f) => [f, join[f]])) as unknown as AccessJoinSummary,
  };
}
