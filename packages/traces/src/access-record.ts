/**
 * Reads the operator record python/lakebed_record.py writes beside a snapshot (NAME.access.json.gz):
 * for every ATen operator that touched a CUDA tensor, when it ran and the storage of each tensor it
 * read, mutated or returned newly allocated. The format is documented in that file; in short:
 *
 *   {"format": "lakebed.access", "version": 1, "clock": "unix_us", "t0_us": T0, "names": [...],
 *    "ops": [[name, start_us - T0, duration_us, flags, device, role, ptr, nbytes, device, role, ...]]}
 *
 * The record is checked field by field; a bad one is one TraceError naming the file and the operator.
 * The result is plain arrays: the join (access-join.ts) does the rest.
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { TraceError } from "./trace-error.js";

export const ACCESS_FORMAT = "lakebed.access";
export const ACCESS_FORMAT_VERSION = 1;

/** How an operator touched a tensor, as the recorder writes it. */
export enum TensorRole {
  Read = 0,
  /** an argument the operator's schema marks as written (in-place and out= arguments) */
  Mutated = 1,
  /** a result whose storage none of the operator's arguments had */
  New = 2,
}

/** bit 0 of an operator's flags: a view, which touches no data */
export const OP_FLAG_VIEW = 1;

export interface RecordedOperator {
  name: number;
  startUs: number;
  endUs: number;
  flags: number;
  /** [device, role, ptr, nbytes] for each storage, flattened */
  tensors: number[];
}

export interface AccessRecord {
  file: string;
  torch: string;
  names: string[];
  /** in the order the operators returned */
  operators: RecordedOperator[];
}

const GZIP = [0x1f, 0x8b];

export function readAccessRecord(path: string): AccessRecord {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new TraceError(path, `cannot read the access record: ${firstLine(error)}`);
  }
  return parseAccessRecord(bytes, path);
}

export function parseAccessRecord(bytes: Uint8Array, file: string): AccessRecord {
  let text: string;
  try {
    const plain = bytes[0] === GZIP[0] && bytes[1] === GZIP[1] ? gunzipSync(bytes) : bytes;
    text = new TextDecoder("utf-8", { fatal: true }).decode(plain);
  } catch (error) {
    throw new TraceError(file, `not a readable access record (gzip or UTF-8): ${firstLine(error)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new TraceError(file, `the access record is not valid JSON: ${firstLine(error)}`);
  }
  return shapeRecord(doc, file);
}

function shapeRecord(doc: unknown, file: string): AccessRecord {
  const fail = (detail: string): never => {
    throw new TraceError(file, `access record: ${detail}`);
  };
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) fail("not a JSON object");
  const d = doc as Record<string, unknown>;
  if (d.format !== ACCESS_FORMAT) fail(`format is ${JSON.stringify(d.format)}, expected "${ACCESS_FORMAT}" (written by python/lakebed_record.py)`);
  if (d.version !== ACCESS_FORMAT_VERSION) fail(`version ${JSON.stringify(d.version)} is not supported (this build reads version ${ACCESS_FORMAT_VERSION})`);
  if (d.clock !== "unix_us") fail(`clock ${JSON.stringify(d.clock)} is not "unix_us"`);
  if (!Number.isSafeInteger(d.t0_us)) fail("t0_us must be a whole number of microseconds");
  if (!Array.isArray(d.names) || !d.names.every((n) => typeof n === "string")) fail("names must be an array of strings");
  if (!Array.isArray(d.ops)) fail("ops must be an array");
  const t0 = d.t0_us as number;
  const names = d.names as string[];
  const operators = (d.ops as unknown[]).map((row, i): RecordedOperator => {
    const bad = (what: string): never => fail(`operator ${i}: ${what}`);
    if (!Array.isArray(row) || row.length < 4 || (row.length - 4) % 4 !== 0) bad("must be [name, start, duration, flags] and four numbers per tensor");
    const r = row as unknown[];
    for (let k = 0; k < r.length; k++) if (!Number.isSafeInteger(r[k])) bad(`item ${k} is not a whole number`);
    const name = r[0] as number;
    const start = r[1] as number;
    const duration = r[2] as number;
    const flags = r[3] as number;
    if (name < 0 || name >= names.length) bad(`names operator ${name} of ${names.length}`);
    if (duration < 0) bad(`has a negative duration ${duration}`);
    const tensors = r.slice(4) as number[];
    for (let k = 0; k < tensors.length; k += 4) {
      const device = tensors[k];
      const role = tensors[k + 1];
      if (device < 0 || device > 0xffff) bad(`tensor ${k / 4} is on device ${device}`);
      if (role !== TensorRole.Read && role !== TensorRole.Mutated && role !== TensorRole.New) bad(`tensor ${k / 4} has role ${role}, not 0, 1 or 2`);
      if (tensors[k + 2] <= 0 || tensors[k + 3] < 0) bad(`tensor ${k / 4} has storage ${tensors[k + 2]} of ${tensors[k + 3]} bytes`);
    }
    return { name, startUs: t0 + start, endUs: t0 + start + duration, flags, tensors };
  });
  return { file, torch: typeof d.torch === "string" ? d.torch : "", names, operators };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
