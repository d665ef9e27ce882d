/**
 * lakebed's on-disk trace format: an Apache Arrow IPC file ("Feather v2"), readable as-is by pandas
 * (`pd.read_feather`), polars (`pl.read_ipc`), DuckDB and pyarrow.
 *
 * One row per trace event, devices one after another, each device's events oldest first:
 *
 *   column     Arrow type                    meaning
 *   device     Int32                         device ordinal (CUDA's is a C int)
 *   action     Dictionary<Utf8, Int8>        PyTorch's action string; index = Action - 1, so the
 *                                            dictionary is ACTION_NAMES in Action order ("other"
 *                                            stands for any action PyTorch named otherwise)
 *   addr       Int64                         bytes, 0 .. 2^53-1; for oom, the free bytes the driver reported
 *   size       Int64                         bytes, 0 .. 2^53-1 (see Action)
 *   stream     UInt64                        raw cudaStream_t value, 0 .. 2^64-1 (a pointer; not the
 *                                            renumbered index)
 *   time_us    Float64                       µs since the Unix epoch; NaN where not recorded
 *   block_id   Int32                         INV-TRACE-3; -1 for actions that are not alloc/free
 *
 * Every type holds the whole range the importer accepts for its column (event-checks.ts), as the
 * plain value: pandas, polars and DuckDB read the same numbers lakebed does (docs/trace-format.md
 * says why each type). Version 1 files (device Int16, stream Int64 holding the pointer's bits) are
 * still read; they lost devices above 32,767 and streams of 2^63 and more.
 *
 * Schema metadata (all values are strings):
 *   lakebed.format_version   "2"
 *   lakebed.trace            JSON: { legacy, allocatorSettings, annotations, source: {file, format,
 *                            gzip}, devices: [{ device, events, streams (decimal strings),
 *                            initialState, finalState, complete, initialLiveBlocks,
 *                            privatePools (optional: absent in files written before it),
 *                            access (optional: the use events of a trace joined to an operator
 *                            record, as access-json.ts lays them out) }] }
 *
 * Everything the Trace model holds is kept, so reading the file back gives an equal Trace (only
 * `file`, `format` and `gzip` describe the Arrow file instead of the original). Reading checks the
 * model's invariants (validate.ts), so a damaged or hand-edited file cannot hand a bad trace on.
 *
 * Size: 41 bytes per event, uncompressed (arrow-js writes no compressed IPC). The largest shared
 * trace, gpt2_ckpt.def (334,387 events): 1.78 MB as .pickle.gz, 24.2 MB as pickle, 13.8 MB as
 * .arrow (13.1 MB in version 1), and about 1.4 MB as .arrow.gz (writeTraceArrow gzips a path ending
 * in .gz; readTrace reads either; pandas, polars and DuckDB need the plain file).
 *
 * apache-arrow is loaded on first use (arrowLibrary): reading a pickle, or `lakebed --help`, does not
 * pay for loading it.
 */
import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { gzip } from "node:zlib";
import { promisify } from "node:util";
import type * as Arrow from "apache-arrow";
import type { Data, DataType, Table } from "apache-arrow";
import { Action, ACTION_NAMES, type AccessColumns, type DeviceTrace, type Trace } from "./model.js";
import { TraceError } from "./trace-error.js";
import { withRecordedSettings } from "./settings.js";
import { checkDeviceTrace } from "./validate.js";
import { accessFromJson, accessToJson } from "./access-json.js";
import { checkAccessColumns } from "./access-valid.js";
import { arrowFraming } from "./arrow-framing.js";
import { checkArrowFileLimits, checkArrowMetaLimits } from "./arrow-limits.js";
import { importLimits, type ImportLimits } from "./import-limits.js";
import { arrowTraceMetaProblem, type TraceMeta } from "./arrow-metadata.js";
import { deviceOrdinalProblem, freeOrderProblem, sizeProblem, streamProblem } from "./event-checks.js";

export const ARROW_FORMAT_VERSION = "2";
/** the versions this build reads: 1 differs only in the device (Int16) and stream (Int64) columns */
const READABLE_VERSIONS = ["1", "2"];
/** Int32's range, which device ordinals must fit */
const MAX_DEVICE = 2 ** 31 - 1;
const MAX_STREAM = 2n ** 64n - 1n;
const gzipAsync = promisify(gzip);
const MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31]; // "ARROW1"
/** dictionary of the action column, index = Action - 1 */
const ACTION_DICTIONARY = (Object.keys(ACTION_NAMES) as unknown as Action[])
  .map(Number)
  .sort((a, b) => a - b)
  .map((a) => ACTION_NAMES[a as Action]);

let loaded: typeof Arrow | undefined;
/** apache-arrow, required the first time an Arrow file is written or read (its CommonJS build). */
function arrowLibrary(): typeof Arrow {
  loaded ??= createRequire(import.meta.url)("apache-arrow") as typeof Arrow;
  return loaded;
}

export function isArrowTrace(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

/** The Arrow IPC file bytes for `trace`. */
export function traceToArrowBytes(trace: Trace): Uint8Array {
  const { Dictionary, Field, Float64, Int32, Int64, Int8, Schema, Table, Uint64, Utf8, RecordBatch, Struct, makeData, tableToIPC, vectorFromArray } = arrowLibrary();
  const total = trace.devices.reduce((n, d) => n + d.events.length, 0);
  const device = new Int32Array(total);
  const action = new Int8Array(total);
  const addr = new BigInt64Array(total);
  const size = new BigInt64Array(total);
  const stream = new BigUint64Array(total);
  const timeUs = new Float64Array(total);
  const blockId = new Int32Array(total);
  let row = 0;
  for (const d of trace.devices) {
    // the importer refuses what these columns cannot hold (event-checks.ts); a trace built by other
    // means is refused here rather than written wrong
    if (!(Number.isInteger(d.device) && d.device >= 0 && d.device <= MAX_DEVICE)) {
      throw new TraceError(trace.file, `device ${d.device} cannot be written: the Arrow format holds device ordinals 0 to ${MAX_DEVICE}`);
    }
    const bad = d.streams.find((s) => s < 0n || s > MAX_STREAM);
    if (bad !== undefined) throw new TraceError(trace.file, `stream ${bad} cannot be written: the Arrow format holds cudaStream_t values 0 to 2^64-1`, { device: d.device });
    const e = d.events;
    const rawStreams = d.streams;
    for (let i = 0; i < e.length; i++, row++) {
      device[row] = d.device;
      action[row] = e.action[i] - 1;
      addr[row] = BigInt(e.addr[i]);
      size[row] = BigInt(e.size[i]);
      stream[row] = rawStreams[e.stream[i]];
      timeUs[row] = e.timeUs[i];
      blockId[row] = e.blockId[i];
    }
  }
  const dictionary = vectorFromArray(ACTION_DICTIONARY, new Utf8());
  const actionType = new Dictionary(new Utf8(), new Int8(), 0, false);
  const columns: [string, Data<DataType>][] = [
    ["device", makeData({ type: new Int32(), length: total, data: device })],
    ["action", makeData({ type: actionType, length: total, data: action, dictionary })],
    ["addr", makeData({ type: new Int64(), length: total, data: addr })],
    ["size", makeData({ type: new Int64(), length: total, data: size })],
    ["stream", makeData({ type: new Uint64(), length: total, data: stream })],
    ["time_us", makeData({ type: new Float64(), length: total, data: timeUs })],
    ["block_id", makeData({ type: new Int32(), length: total, data: blockId })],
  ];
  const meta: TraceMeta = {
    legacy: trace.legacy,
    allocatorSettings: trace.allocatorSettings,
    annotations: trace.annotations,
    source: { file: trace.file, format: trace.format, gzip: trace.gzip },
    devices: trace.devices.map((d) => ({
      device: d.device,
      events: d.events.length,
      streams: d.streams.map(String),
      initialState: d.initialState,
      finalState: d.finalState,
      complete: d.complete,
      initialLiveBlocks: d.initialLiveBlocks,
      privatePools: d.privatePools,
      ...(d.access === undefined ? {} : { access: accessToJson(d.access) }),
    })),
  };
  const metadata = new Map([
    ["lakebed.format_version", ARROW_FORMAT_VERSION],
    ["lakebed.trace", JSON.stringify(meta, (_k, v) => (typeof v === "number" && Number.isNaN(v) ? null : v))],
  ]);
  const fields = columns.map(([name, data]) => new Field(name, data.type, false));
  const schema = new Schema(fields, metadata);
  const struct = makeData({ type: new Struct(fields), length: total, nullCount: 0, children: columns.map(([, data]) => data) });
  const table = new Table(schema, [new RecordBatch(schema, struct)]);
  return tableToIPC(table, "file");
}

/**
 * Writes `trace` as an Arrow IPC file. A path ending in ".gz" gets the same bytes gzip-compressed
 * (readTrace reads either; pandas, polars and DuckDB need the plain file).
 */
export async function writeTraceArrow(trace: Trace, path: string): Promise<void> {
  const bytes = traceToArrowBytes(trace);
  await writeFile(path, path.endsWith(".gz") ? await gzipAsync(bytes) : bytes);
}

/**
 * Reads lakebed's Arrow trace file from memory; `source` describes the file being read. The stated
 * limits hold as for any trace (arrow-limits.ts).
 */
export function readTraceArrowBytes(bytes: Uint8Array, source: { file: string; gzip: boolean }, limits: ImportLimits = importLimits()): Trace {
  const { file } = source;
  const { tableFromIPC, Type } = arrowLibrary();
  const framing = arrowFraming(bytes);
  if (framing.problem !== null) throw new TraceError(file, `not a readable Arrow IPC file: ${framing.problem}`);
  checkArrowFileLimits(framing, file, limits);
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (error) {
    throw new TraceError(file, `not a readable Arrow IPC file: ${arrowFailure(error)}`);
  }
  const version = table.schema.metadata.get("lakebed.format_version");
  const metaText = table.schema.metadata.get("lakebed.trace");
  // a metadata entry may have a key and no value: arrow-js gives null then
  if (version == null || metaText == null) throw new TraceError(file, "an Arrow file, but not a lakebed trace (no lakebed.trace metadata)");
  if (!READABLE_VERSIONS.includes(version)) throw new TraceError(file, `lakebed Arrow trace format version ${JSON.stringify(version.slice(0, 40))} is not supported (this build reads versions ${READABLE_VERSIONS.join(" and ")})`);
  const version1 = version === "1";
  let meta: TraceMeta;
  try {
    meta = JSON.parse(metaText);
  } catch {
    throw new TraceError(file, "lakebed.trace metadata is not valid JSON");
  }
  checkArrowMetaLimits(meta, file, limits);
  const metaProblem = arrowTraceMetaProblem(meta);
  if (metaProblem !== null) throw new TraceError(file, `lakebed Arrow trace metadata: ${metaProblem}`);
  const total = table.numRows;
  if (meta.devices.reduce((n, d) => n + d.events, 0) !== total) {
    throw new TraceError(file, `lakebed.trace metadata does not describe the ${total} rows of the file`);
  }
  const column = (name: string, type: string): ArrayLike<unknown> => {
    const vector = table.getChild(name);
    if (vector === null) throw new TraceError(file, `lakebed Arrow trace has no ${name} column`);
    // the type's own name: its toString may print parameters a damaged file left unset ("undefined")
    if (String(vector.type) !== type) throw new TraceError(file, `lakebed Arrow trace: the ${name} column is of type ${Type[vector.type.typeId] ?? vector.type.typeId}, not ${type}`);
    if (vector.nullCount !== 0) throw new TraceError(file, `lakebed Arrow trace: the ${name} column has nulls`);
    const values = vector.toArray() as ArrayLike<unknown>;
    if (values.length !== total) throw new TraceError(file, `lakebed Arrow trace: the ${name} column holds ${values.length} of the ${total} rows`);
    return values;
  };
  const addr = column("addr", "Int64") as ArrayLike<bigint>;
  const size = column("size", "Int64") as ArrayLike<bigint>;
  const stream = column("stream", version1 ? "Int64" : "Uint64") as ArrayLike<bigint>;
  // version 1 wrote the device as Int16, which lost ordinals above 32,767: its metadata decides
  const device = version1 ? null : (column("device", "Int32") as ArrayLike<number>);
  const timeUs = column("time_us", "Float64") as ArrayLike<number>;
  const blockId = column("block_id", "Int32") as ArrayLike<number>;
  const action = actionCodes(table, file);
  let row = 0;
  const devices = meta.devices.map((m): DeviceTrace => {
    const n = m.events;
    const streams = m.streams.map((s) => BigInt(s));
    const streamIndex = new Map(streams.map((s, i) => [version1 ? BigInt.asIntN(64, s) : s, i]));
    const events = {
      length: n,
      action: action.slice(row, row + n),
      addr: new Float64Array(n),
      size: new Float64Array(n),
      stream: new Uint32Array(n),
      timeUs: new Float64Array(n),
      blockId: new Int32Array(n),
    };
    for (let i = 0; i < n; i++, row++) {
      if (device !== null && device[row] !== m.device) throw new TraceError(file, `row ${row} has device ${device[row]} where the metadata has device ${m.device}`, { device: m.device, eventIndex: i });
      events.addr[i] = Number(addr[row]);
      events.size[i] = Number(size[row]);
      const s = streamIndex.get(stream[row]);
      if (s === undefined) throw new TraceError(file, `stream ${stream[row]} is not among the device's streams`, { device: m.device, eventIndex: i });
      events.stream[i] = s;
      events.timeUs[i] = timeUs[row];
      events.blockId[i] = blockId[row];
    }
    return {
      device: m.device,
      events,
      streams,
      initialState: m.initialState,
      finalState: m.finalState,
      complete: m.complete,
      initialLiveBlocks: m.initialLiveBlocks,
      privatePools: m.privatePools ?? [],
      ...(m.access === undefined ? {} : { access: accessColumns(m.access, file, m.device) }),
    };
  });
  for (const d of devices) {
    const problem = checkDeviceTrace(d) ?? (d.access === undefined ? null : checkAccessColumns(d, d.access));
    if (problem !== null) throw new TraceError(file, `lakebed Arrow trace breaks the trace model: ${problem}`, { device: d.device });
    // the range of values the importer accepts from any format (a hand-edited file may leave it)
    for (const check of [deviceOrdinalProblem(d.device), streamProblem(d.streams, d.events), sizeProblem(d.events, [...d.initialState, ...d.finalState]), freeOrderProblem(d.events, d.initialState)]) {
      if (check !== null) throw new TraceError(file, check.detail, { device: d.device, eventIndex: check.eventIndex });
    }
  }
  const annotations = meta.annotations.map((a) => ({ ...a, timeUs: a.timeUs ?? NaN }));
  // the recorder's empty_cache calls and device total travel in the settings, as in the snapshot it was made from
  const marked = devices.map((d) => withRecordedSettings(d, meta.allocatorSettings, file));
  return { file, format: "arrow", gzip: source.gzip, allocatorSettings: meta.allocatorSettings, devices: marked, legacy: meta.legacy, annotations };
}

function accessColumns(v: unknown, file: string, device: number): AccessColumns {
  const access = accessFromJson(v, "lakebed.trace device access");
  if (typeof access === "string") throw new TraceError(file, `lakebed Arrow trace metadata: ${access}`, { device });
  return access;
}

/**
 * What arrow-js said about a file it could not read. Its own errors are plain Errors with a message
 * in words; a TypeError or RangeError comes from arrow-js's internals reading buffers that do not
 * match the schema (a field with fewer buffers than its type needs), whose message names only
 * JavaScript internals, so that is said instead.
 */
function arrowFailure(error: unknown): string {
  if (error instanceof TypeError || error instanceof RangeError) return `its record batches do not match its schema (arrow-js: ${error.name})`;
  return (error instanceof Error ? error.message : String(error)).split("\n")[0].slice(0, 200);
}

/** The action column as Action codes, whatever dictionary order the file uses. */
function actionCodes(table: Table, file: string): Uint8Array {
  const vector = table.getChild("action");
  if (vector === null) throw new TraceError(file, "lakebed Arrow trace has no action column");
  const out = new Uint8Array(table.numRows);
  const byName = new Map(Object.entries(ACTION_NAMES).map(([code, name]) => [name, Number(code)]));
  let row = 0;
  for (const data of vector.data) {
    const names = data.dictionary?.toArray() as string[] | undefined;
    if (names === undefined) throw new TraceError(file, "lakebed Arrow trace: the action column is not dictionary-encoded");
    const codes = names.map((name) => byName.get(name) ?? Action.Other);
    const indices = data.values as ArrayLike<number>;
    if (row + data.length > out.length || indices.length < data.length || data.nullCount !== 0) {
      throw new TraceError(file, "lakebed Arrow trace: the action column does not hold one action per row");
    }
    for (let i = 0; i < data.length; i++, row++) {
      const code = codes[indices[i]];
      if (code === undefined) throw new TraceError(file, `lakebed Arrow trace: row ${row} names action ${indices[i]} of a dictionary of ${codes.length}`);
      out[row] = code;
    }
  }
  if (row !== out.length) throw new TraceError(file, "lakebed Arrow trace: the action column does not hold one action per row");
  return out;
}
