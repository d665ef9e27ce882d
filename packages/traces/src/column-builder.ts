/**
 * Growable per-device event columns, filled one trace entry at a time by the pickle shaper or the
 * JSON reader. It owns the meaning of a trace entry's keys (reference B5) and checks each value as
 * it arrives, so a bad entry is reported by device and index.
 *
 * Columns grow by doubling typed arrays; `finish` trims them (see TRIM_BELOW_FILL). Streams are kept as provisional ids in
 * order of first appearance here; streams.ts renumbers them by raw value later (INV-TRACE-2), once
 * the streams of the final segments are known too.
 */
import { Action, ACTION_NAMES } from "./model.js";
import { TraceError } from "./trace-error.js";
import { describe } from "./decoded-values.js";

/** Raw `cudaStream_t` as recorded: a number when exact, else a bigint. */
export type RawStream = number | bigint;

const INITIAL_CAPACITY = 1024;
/** `finish` copies columns filled below this fraction into arrays of their length, and views the rest */
const TRIM_BELOW_FILL = 0.75;

/**
 * The keys of a trace entry the columns keep (reference B5), as the index of their slot in
 * ColumnBuilder.pending. Numeric fields are positive; Action is negative because its value is a
 * string (see ContainerSink.keyCode for what the sign means to the decoder).
 */
export enum Field {
  Action = -1,
  Ignored = 0,
  Addr = 1,
  DeviceFree = 2,
  Size = 3,
  Stream = 4,
  TimeUs = 5,
}
const PENDING_SLOTS = 6;

/** The keys fieldOf gives a field (the entry scanner's table of names is built from them). */
export const ENTRY_KEYS: readonly string[] = ["action", "addr", "device_free", "size", "stream", "time_us"];

export function fieldOf(key: string): Field {
  switch (key) {
    case "action":
      return Field.Action;
    case "addr":
      return Field.Addr;
    case "device_free":
      return Field.DeviceFree;
    case "size":
      return Field.Size;
    case "stream":
      return Field.Stream;
    case "time_us":
      return Field.TimeUs;
    default:
      return Field.Ignored;
  }
}

/** Action strings are memoized by the pickle (and interned by the decoder), so this is a pointer compare chain. */
export function actionOf(name: string): Action {
  switch (name) {
    case "alloc":
      return Action.Alloc;
    case "free_requested":
      return Action.FreeRequested;
    case "free_completed":
      return Action.FreeCompleted;
    default:
      return ACTION_BY_NAME.get(name) ?? Action.Other;
  }
}

/** PyTorch's action names; "other" is lakebed's name for the rest, never a PyTorch one. */
const ACTION_BY_NAME: ReadonlyMap<string, Action> = new Map(
  (Object.entries(ACTION_NAMES) as [string, string][]).filter(([, name]) => name !== "other").map(([code, name]) => [name, Number(code) as Action]),
);

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

/**
 * Entries decoded outside the builder (the WebAssembly entry scanner), as columns from row 0,
 * each already checked as commit() checks one: raw stream values (0 where none was given), times
 * NaN where none was given, and for oom entries device_free in `addr`.
 */
export interface DecodedRows {
  action: Uint8Array;
  addr: Float64Array;
  size: Float64Array;
  stream: Float64Array;
  timeUs: Float64Array;
}

class DeviceColumns {
  length = 0;
  action: Uint8Array;
  addr: Float64Array;
  size: Float64Array;
  stream: Uint32Array;
  timeUs: Float64Array;
  readonly streamIds = new Map<RawStream, number>();
  readonly rawStreams: RawStream[] = [];

  constructor(
    readonly device: number,
    public capacity: number,
  ) {
    this.action = new Uint8Array(capacity);
    this.addr = new Float64Array(capacity);
    this.size = new Float64Array(capacity);
    this.stream = new Uint32Array(capacity);
    this.timeUs = new Float64Array(capacity);
  }

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
  /**
   * The entry being decoded: numeric values by Field (NaN = not given), written by setField and, on
   * the decoder's fast path, directly (EntrySink exposes it as its `row`). It is checked and moved
   * into the columns when the next entry begins, or at finish.
   */
  readonly pending = new Float64Array(PENDING_SLOTS);
  private pendingAction = 0;
  private pendingBigStream: bigint | undefined;
  private readonly devices: DeviceColumns[] = [];
  private current: DeviceColumns | undefined;
  private open = false;
  /** the last stream value seen and its provisional id (streams rarely change between entries) */
  private lastRawStream = NaN;
  private lastStreamId = 0;

  /**
   * `expectedRows`: a guess at the first device's entry count (readers derive it from the input
   * size), so that its columns need not grow by doubling; a wrong guess costs only time or slack.
   */
  constructor(
    private readonly file: string,
    private expectedRows = INITIAL_CAPACITY,
  ) {}

  /** Starts a new trace entry on `device` (entries of one device arrive oldest first). */
  beginRow(device: number): void {
    if (this.open) this.commit();
    const columns = this.columnsOf(device);
    if (this.current !== columns) this.lastRawStream = NaN;
    this.current = columns;
    const p = this.pending;
    for (let i = 0; i < PENDING_SLOTS; i++) p[i] = NaN;
    this.pendingAction = 0;
    this.pendingBigStream = undefined;
    this.open = true;
  }

  /** Appends `count` entries of `device` decoded elsewhere (see DecodedRows). */
  appendRows(device: number, rows: DecodedRows, count: number): void {
    if (this.open) this.commit();
    const columns = this.columnsOf(device);
    while (columns.length + count > columns.capacity) columns.grow();
    const at = columns.length;
    columns.action.set(rows.action.subarray(0, count), at);
    columns.addr.set(rows.addr.subarray(0, count), at);
    columns.size.set(rows.size.subarray(0, count), at);
    columns.timeUs.set(rows.timeUs.subarray(0, count), at);
    let lastRaw = NaN;
    let lastId = 0;
    for (let i = 0; i < count; i++) {
      const raw = rows.stream[i];
      if (raw !== lastRaw) {
        lastId = columns.streamId(raw);
        lastRaw = raw;
      }
      columns.stream[at + i] = lastId;
    }
    columns.length += count;
    this.current = columns;
    this.lastRawStream = NaN;
  }

  private columnsOf(device: number): DeviceColumns {
    let columns = this.devices[device];
    if (columns === undefined) {
      columns = new DeviceColumns(device, Math.max(INITIAL_CAPACITY, this.expectedRows));
      this.expectedRows = INITIAL_CAPACITY;
      this.devices[device] = columns;
    }
    return columns;
  }

  /** Records one key of the current entry; unknown keys (frames, compile_context, ...) are ignored. */
  setField(key: unknown, value: unknown): void {
    const field = typeof key === "string" ? fieldOf(key) : Field.Ignored;
    if (field === Field.Ignored) return;
    if (field > 0 && typeof value === "number") this.pending[field] = value;
    else this.setOther(field, value);
  }

  /** A value for `field` that is not a number stored into `pending` directly. */
  setOther(field: Field, value: unknown): void {
    switch (field) {
      case Field.Action:
        if (typeof value !== "string") this.fail(`action is ${describe(value)}, expected a string`);
        this.pendingAction = actionOf(value as string);
        break;
      case Field.Stream:
        if (typeof value === "bigint") this.pendingBigStream = value;
        else if (typeof value === "number") this.pending[Field.Stream] = value;
        else this.fail(`stream is ${describe(value)}, expected an integer`);
        break;
      case Field.TimeUs:
        if (typeof value === "bigint") this.pending[Field.TimeUs] = Number(value);
        else if (typeof value === "number") this.pending[Field.TimeUs] = value;
        else if (value !== null) this.fail(`time_us is ${describe(value)}, expected a number`);
        break;
      case Field.Addr:
        this.fail(`addr ${describe(value)} is not a byte count (a whole number from 0 to 2^53)`);
        break;
      case Field.DeviceFree:
        this.fail(`device_free ${describe(value)} is not a byte count (a whole number from 0 to 2^53)`);
        break;
      case Field.Size:
        this.fail(`size ${describe(value)} is not a byte count (a whole number from 0 to 2^53)`);
        break;
      default:
        break;
    }
  }

  /** Checks the pending entry and appends it to its device's columns. */
  private commit(): void {
    const columns = this.current!;
    const p = this.pending;
    const action = this.pendingAction as Action;
    if (this.pendingAction === 0) this.fail("trace entry has no action");
    // an oom entry has no addr; its addr column holds device_free, the bytes the driver reported free
    const addrField = action === Action.Oom ? Field.DeviceFree : Field.Addr;
    const addr = p[addrField];
    const size = p[Field.Size];
    if (!isByteCount(addr)) {
      if (addr === addr) this.fail(`${addrField === Field.Addr ? "addr" : "device_free"} ${addr} is not a byte count (a whole number from 0 to 2^53)`);
      if (needsAddr(action)) this.fail(`${ACTION_NAMES[action]} entry has no addr`);
    }
    if (!isByteCount(size)) {
      if (size === size) this.fail(`size ${size} is not a byte count (a whole number from 0 to 2^53)`);
      if (needsSize(action)) this.fail(`${ACTION_NAMES[action]} entry has no size`);
    }
    const stream = p[Field.Stream];
    let streamId: number;
    if (stream === this.lastRawStream) {
      streamId = this.lastStreamId;
    } else if (this.pendingBigStream !== undefined) {
      streamId = columns.streamId(this.pendingBigStream);
    } else {
      if (stream === stream && !Number.isInteger(stream)) this.fail(`stream ${stream} is not an integer`);
      // an entry without a stream was on PyTorch's default stream, 0
      streamId = columns.streamId(stream === stream ? stream : 0);
      this.lastRawStream = stream;
      this.lastStreamId = streamId;
    }
    if (columns.length === columns.capacity) columns.grow();
    const row = columns.length++;
    columns.action[row] = action;
    columns.addr[row] = addr === addr ? addr : 0;
    columns.size[row] = size === size ? size : 0;
    columns.stream[row] = streamId;
    columns.timeUs[row] = Number.isFinite(p[Field.TimeUs]) ? p[Field.TimeUs] : NaN;
    this.open = false;
  }

  /** Hands over the trimmed columns by device. */
  finish(): RawDeviceEvents[] {
    if (this.open) this.commit();
    const out: RawDeviceEvents[] = [];
    for (const columns of this.devices) {
      if (columns === undefined) continue;
      const n = columns.length;
      // a copy only pays where it frees much: the columns were sized from the input (or doubled)
      const trim = <T extends Uint8Array | Uint32Array | Float64Array>(a: T): T => (n >= a.length * TRIM_BELOW_FILL ? (a.subarray(0, n) as T) : (a.slice(0, n) as T));
      out.push({
        device: columns.device,
        length: n,
        action: trim(columns.action),
        addr: trim(columns.addr),
        size: trim(columns.size),
        stream: trim(columns.stream),
        timeUs: trim(columns.timeUs),
        rawStreams: columns.rawStreams,
      });
    }
    return out;
  }

  /** Errors name the entry being decoded: its index is the number of entries committed before it. */
  private fail(detail: string): never {
    const columns = this.current!;
    throw new TraceError(this.file, detail, { device: columns.device, eventIndex: columns.length });
  }
}

/** A byte count or address: a whole number in [0, 2^53) (INV-TRACE-4). NaN is not. */
function isByteCount(x: number): boolean {
  return x >= 0 && x <= Number.MAX_SAFE_INTEGER && Math.floor(x) === x;
}

function needsSize(action: Action): boolean {
  return action !== Action.Other && action !== Action.Snapshot;
}

function needsAddr(action: Action): boolean {
  return action !== Action.Other && action !== Action.Snapshot && action !== Action.Oom;
}
