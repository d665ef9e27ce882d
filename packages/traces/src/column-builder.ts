/**
 * Growable per-device event columns, filled one trace entry at a time by the pickle shaper or the
 * JSON reader. It owns the meaning of a trace entry's keys (reference B5) and checks each value as
 * it arrives, so a bad entry is reported by device and index.
 *
 * Columns grow by doubling typed arrays; `finish` trims them. Streams are kept as provisional ids in
 * order of first appearance here; streams.ts renumbers them by raw value later (INV-TRACE-2), once
 * the streams of the final segments are known too.
 */
import { Action } from "./model.js";
import { TraceError } from "./trace-error.js";

/** Raw `cudaStream_t` as recorded: a number when exact, else a bigint. */
export type RawStream = number | bigint;

const INITIAL_CAPACITY = 1024;
/** stream column value while an entry has not named its stream (PyTorch's default stream then) */
const NO_STREAM = 0xffffffff;

const ACTION_BY_NAME: ReadonlyMap<string, Action> = new Map([
  ["alloc", Action.Alloc],
  ["free_requested", Action.FreeRequested],
  ["free_completed", Action.FreeCompleted],
  ["segment_alloc", Action.SegmentAlloc],
  ["segment_free", Action.SegmentFree],
  ["segment_map", Action.SegmentMap],
  ["segment_unmap", Action.SegmentUnmap],
  ["oom", Action.Oom],
  ["snapshot", Action.Snapshot],
]);

/** The columns of one device as read, before stream renumbering and block identities. */
export interface RawDeviceEvents {
  device: number;
  length: number;
  action: Uint8Array;
  addr: Float64Array;
  size: Float64Array;
  /** provisional stream ids: index into `rawStreams` */
  stream: Uint32Array;
  timeUs: Float64Array;
  /** raw stream values in order of first appearance */
  rawStreams: RawStream[];
}

class DeviceColumns {
  length = 0;
  capacity = INITIAL_CAPACITY;
  action = new Uint8Array(INITIAL_CAPACITY);
  addr = new Float64Array(INITIAL_CAPACITY);
  size = new Float64Array(INITIAL_CAPACITY);
  stream = new Uint32Array(INITIAL_CAPACITY);
  timeUs = new Float64Array(INITIAL_CAPACITY);
  readonly streamIds = new Map<RawStream, number>();
  readonly rawStreams: RawStream[] = [];

  constructor(readonly device: number) {}

  grow(): void {
    const capacity = this.capacity * 2;
    const grown = <T extends Uint8Array | Uint32Array | Float64Array>(old: T, make: new (n: number) => T): T => {
      const next = new make(capacity);
      next.set(old);
      return next;
    };
    this.action = grown(this.action, Uint8Array);
    this.addr = grown(this.addr, Float64Array);
    this.size = grown(this.size, Float64Array);
    this.stream = grown(this.stream, Uint32Array);
    this.timeUs = grown(this.timeUs, Float64Array);
    this.capacity = capacity;
  }

  streamId(raw: RawStream): number {
    let id = this.streamIds.get(raw);
    if (id === undefined) {
      id = this.rawStreams.length;
      this.rawStreams.push(raw);
      this.streamIds.set(raw, id);
    }
    return id;
  }
}

export class ColumnBuilder {
  private readonly devices: DeviceColumns[] = [];
  private current: DeviceColumns | undefined;
  private row = -1;

  constructor(private readonly file: string) {}

  /** Starts a new trace entry on `device` (entries of one device arrive oldest first). */
  beginRow(device: number): void {
    let columns = this.devices[device];
    if (columns === undefined) {
      columns = new DeviceColumns(device);
      this.devices[device] = columns;
    }
    if (columns.length === columns.capacity) columns.grow();
    const row = columns.length++;
    columns.action[row] = 0;
    columns.addr[row] = NaN;
    columns.size[row] = NaN;
    columns.stream[row] = NO_STREAM;
    columns.timeUs[row] = NaN;
    this.current = columns;
    this.row = row;
  }

  /** Records one key of the current entry; unknown keys (frames, compile_context, ...) are ignored. */
  setField(key: unknown, value: unknown): void {
    const columns = this.current!;
    const row = this.row;
    switch (key) {
      case "action":
        if (typeof value !== "string") this.fail(`action is ${describe(value)}, expected a string`);
        columns.action[row] = ACTION_BY_NAME.get(value as string) ?? Action.Other;
        break;
      case "addr":
        // an oom entry's addr column holds device_free; a stray addr key must not overwrite it
        if (columns.action[row] !== Action.Oom) columns.addr[row] = this.byteCount("addr", value);
        break;
      case "device_free":
        columns.addr[row] = this.byteCount("device_free", value);
        break;
      case "size":
        columns.size[row] = this.byteCount("size", value);
        break;
      case "stream":
        if (typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value))) {
          columns.stream[row] = columns.streamId(value);
        } else {
          this.fail(`stream is ${describe(value)}, expected an integer`);
        }
        break;
      case "time_us":
        if (typeof value === "number" && Number.isFinite(value)) columns.timeUs[row] = value;
        else if (typeof value === "bigint") columns.timeUs[row] = Number(value);
        else if (value !== null) this.fail(`time_us is ${describe(value)}, expected a number`);
        break;
      default:
        break;
    }
  }

  /** Checks that every entry said what it needs, and hands over the trimmed columns by device. */
  finish(): RawDeviceEvents[] {
    const out: RawDeviceEvents[] = [];
    for (const columns of this.devices) {
      if (columns === undefined) continue;
      const n = columns.length;
      let defaultStream = -1;
      for (let i = 0; i < n; i++) {
        const action = columns.action[i] as Action;
        const where = { device: columns.device, eventIndex: i };
        if (columns.action[i] === 0) throw new TraceError(this.file, "trace entry has no action", where);
        if (Number.isNaN(columns.size[i])) {
          if (needsSize(action)) throw new TraceError(this.file, `${actionLabel(action)} entry has no size`, where);
          columns.size[i] = 0;
        }
        if (Number.isNaN(columns.addr[i])) {
          if (needsAddr(action)) throw new TraceError(this.file, `${actionLabel(action)} entry has no addr`, where);
          columns.addr[i] = 0;
        }
        if (columns.stream[i] === NO_STREAM) {
          if (defaultStream < 0) defaultStream = columns.streamId(0);
          columns.stream[i] = defaultStream;
        }
      }
      out.push({
        device: columns.device,
        length: n,
        action: columns.action.slice(0, n),
        addr: columns.addr.slice(0, n),
        size: columns.size.slice(0, n),
        stream: columns.stream.slice(0, n),
        timeUs: columns.timeUs.slice(0, n),
        rawStreams: columns.rawStreams,
      });
    }
    return out;
  }

  /** A byte count or address: a whole number in [0, 2^53) (INV-TRACE-4). */
  private byteCount(key: string, value: unknown): number {
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
    return this.fail(`${key} ${describe(value)} is not a byte count (a whole number from 0 to 2^53)`);
  }

  private fail(detail: string): never {
    const columns = this.current!;
    throw new TraceError(this.file, detail, { device: columns.device, eventIndex: this.row });
  }
}

function needsSize(action: Action): boolean {
  return action !== Action.Other && action !== Action.Snapshot;
}

function needsAddr(action: Action): boolean {
  return action !== Action.Other && action !== Action.Snapshot && action !== Action.Oom;
}

function actionLabel(action: Action): string {
  for (const [name, value] of ACTION_BY_NAME) if (value === action) return name;
  return "other";
}

/** A short description of a decoded value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "None";
  if (value === undefined) return "missing";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "a list";
  return "a dict";
}
