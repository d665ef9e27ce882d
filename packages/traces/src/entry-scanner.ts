/**
 * The WebAssembly fast path for runs of trace entries (assembly/entry-scanner.ts: what it takes,
 * and why it is there), bound to one pickle decode. The pickle decoder asks it, through
 * DeviceEventsSink.decodeItems, for every run of entries; it hands back the rows it decoded, and
 * where it stopped the JavaScript decoder goes on, so an unusual entry or a damaged file is decoded
 * and reported exactly as without it (test/entry-scanner.test.ts compares the two on every trace).
 *
 * The scanner keeps the memo values of the entries it decodes in its own records; the decoder's
 * PickleMemo counts them (extendTo) and fetches one only when a later opcode refers to it
 * (resolve). Before each run, the memo values the JavaScript decoder stored since the last run are
 * classified into records, so both sides see one memo.
 *
 * The input comes in windows (pickle-stream.ts): the stream driver reads each one straight into the
 * scanner's window region, and the scanner takes part only in the decode of a window there (a
 * window that had to grow past the region, for one very long value, is the JavaScript decoder's
 * alone). A memoized string is recorded as its place in the window, and handed over to the memo as
 * a JavaScript string before the window's bytes go (handOverStrings): nothing keeps earlier input.
 */
import { ACTION_NAMES, type Action } from "./model.js";
import { ENTRY_KEYS, actionOf, fieldOf, type ColumnBuilder, type DecodedRows } from "./column-builder.js";
import type { PickleMemo } from "./pickle-memo.js";
import { StringDecoder } from "./pickle-scalars.js";
import { SKIPPED } from "./pickle-shaping.js";
import { wasmModule } from "./wasm-module.js";

/** assembly/entry-scanner.ts MEMO_*: what a memo record holds */
enum MemoKind {
  Empty = 0,
  Entry = 1,
  Skipped = 2,
  String = 3,
  JsString = 4,
  JsValue = 5,
}
const MEMO_RECORD_BYTES = 12;

/** assembly/entry-scanner.ts STOPPED_*: how a scan call ended */
enum Stop {
  AtNonEntry = 0,
  AtUnusualEntry = 1,
  Full = 2,
}

const PAGE_BYTES = 65536;
/** rows per scan call: a run is one APPENDS batch (1,000 entries) in pickles PyTorch writes */
const ROW_CAPACITY = 16384;
const ROW_BYTES = 4 * 8 + 1;
const NAMES_BYTES = 4096;
/** wasm32 memory ends at 4 GiB */
const MAX_MEMORY_BYTES = 2 ** 32 - PAGE_BYTES;
/** every MEMOIZE follows an opcode of at least one byte, so n bytes of pickle memoize at most n/2 values */
const MEMO_RECORDS_PER_INPUT_BYTE = 0.5;

interface ScannerExports {
  memory: WebAssembly.Memory;
  configure(inputPtr: number, inputLength: number, start: number, namesPtr: number, namesCount: number, rowsPtr: number, rowsCapacity: number, memoPtr: number, memoRecords: number): void;
  scan(pos: number, memoLength: number): number;
  stoppedAt(): number;
  memoLengthAfter(): number;
  rowsDecoded(): number;
}

/** The compiled scanner, or null (the decoder then does all the work). */
function scannerModule(): WebAssembly.Module | null {
  return wasmModule("entry-scanner.wasm");
}

/** Whether the WebAssembly fast path is available here (tests check that it is used). */
export function entryScannerAvailable(): boolean {
  return scannerModule() !== null;
}

/**
 * One scanner instance's memory: names, rows, the input window, then the memo records, which grow
 * at the end of the memory as the pickle memoizes more. The stream driver (pickle-stream.ts) reads
 * the input straight into the window, a few MiB at a time, and the decoder decodes it there.
 *
 * Invariant: the memory grows only between windows (reserveRecords), never while a window is being
 * decoded, so the views the decoder holds stay valid for the whole window; each window reserves the
 * records its bytes can add (MEMO_RECORDS_PER_INPUT_BYTE), so a scan never runs out of them.
 */
class ScannerMemory {
  readonly wasm: ScannerExports;
  readonly names: number;
  private readonly namesPtr: number;
  private readonly rowsPtr: number;
  readonly windowPtr: number;
  private readonly memoPtr: number;
  memoRecords: number;
  rows!: DecodedRows;
  records!: Uint8Array;
  recordView!: DataView;

  constructor(module: WebAssembly.Module, readonly windowCapacity: number) {
    this.wasm = new WebAssembly.Instance(module, {}).exports as unknown as ScannerExports;
    const memory = this.wasm.memory;
    this.namesPtr = memory.buffer.byteLength;
    this.rowsPtr = this.namesPtr + NAMES_BYTES;
    this.windowPtr = this.rowsPtr + ROW_CAPACITY * ROW_BYTES;
    this.memoPtr = align8(this.windowPtr + windowCapacity);
    this.memoRecords = 0;
    if (this.memoPtr >= MAX_MEMORY_BYTES) throw new RangeError("window too large for the entry scanner");
    memory.grow(Math.ceil((this.memoPtr - this.namesPtr) / PAGE_BYTES));
    this.names = writeNames(new Uint8Array(memory.buffer, this.namesPtr, NAMES_BYTES));
    this.refreshViews();
  }

  /** Makes room for `records` memo records; false where wasm32 memory cannot hold them. */
  reserveRecords(records: number): boolean {
    if (records <= this.memoRecords) return true;
    // grow by at least half again, so that a long pickle grows the memory a few dozen times in all
    const wanted = Math.max(records, Math.ceil(this.memoRecords * 1.5));
    const fits = Math.floor((MAX_MEMORY_BYTES - this.memoPtr) / MEMO_RECORD_BYTES);
    const target = Math.min(wanted, fits);
    if (target < records) return false;
    const memory = this.wasm.memory;
    const endBytes = this.memoPtr + target * MEMO_RECORD_BYTES;
    if (endBytes > memory.buffer.byteLength) memory.grow(Math.ceil((endBytes - memory.buffer.byteLength) / PAGE_BYTES));
    this.memoRecords = target;
    this.refreshViews();
    return true;
  }

  /** The window region, `length` bytes of it (views of the memory as it is now). */
  window(length: number): Uint8Array {
    return new Uint8Array(this.wasm.memory.buffer, this.windowPtr, length);
  }

  /** Whether `buf` is a view of this memory's window (the decoder's current window). */
  holds(buf: Uint8Array): boolean {
    return buf.buffer === this.wasm.memory.buffer && buf.byteOffset === this.windowPtr;
  }

  /** The scanner's configuration for a window of `length` bytes. */
  configure(length: number): void {
    this.wasm.configure(this.windowPtr, length, 0, this.namesPtr, this.names, this.rowsPtr, ROW_CAPACITY, this.memoPtr, this.memoRecords);
  }

  private refreshViews(): void {
    const buffer = this.wasm.memory.buffer;
    const column = (k: number) => new Float64Array(buffer, this.rowsPtr + k * 8 * ROW_CAPACITY, ROW_CAPACITY);
    this.rows = { addr: column(0), size: column(1), stream: column(2), timeUs: column(3), action: new Uint8Array(buffer, this.rowsPtr + 4 * 8 * ROW_CAPACITY, ROW_CAPACITY) };
    this.records = new Uint8Array(buffer, this.memoPtr, this.memoRecords * MEMO_RECORD_BYTES);
    this.recordView = new DataView(buffer, this.memoPtr, this.memoRecords * MEMO_RECORD_BYTES);
  }
}

export class EntryScanner {
  private readonly wasm: ScannerExports;
  private readonly strings = new StringDecoder();
  private attached: PickleMemo | null = null;
  /** memo indices below this are in the records: the scanner's own, or classified from the memo */
  private synced = 0;
  /** records below this hold no string pointing into a window (handOverStrings) */
  private handedOver = 0;
  /** set when the memo outgrew the records: the JavaScript decoder does the rest */
  private retired = false;
  /** whether the decoder's current window is this scanner's (beginWindow) */
  private active = false;

  /**
   * A scanner whose window holds up to `windowCapacity` bytes, or null when the fast path is not
   * available here (or wasm32 memory cannot hold such a window).
   */
  static create(entryValue: unknown, windowCapacity: number): EntryScanner | null {
    const module = scannerModule();
    if (module === null) return null;
    try {
      return new EntryScanner(new ScannerMemory(module, windowCapacity), entryValue);
    } catch {
      return null; // no room in wasm32 memory: the JavaScript decoder reads it
    }
  }

  private constructor(
    private readonly memory: ScannerMemory,
    /** the value the decoder stands for a decoded entry with (its entry sink) */
    private readonly entryValue: unknown,
  ) {
    this.wasm = memory.wasm;
  }

  get windowCapacity(): number {
    return this.memory.windowCapacity;
  }

  /**
   * Before the bytes of the current window are moved or dropped: every memo string the scanner
   * recorded as a place in the window becomes a JavaScript string in the memo, so that the memo
   * never pins the input (a later BINGET may reach back to any of them).
   */
  handOverStrings(): void {
    const memo = this.attached;
    if (memo === null) return;
    const records = this.memory.records;
    const view = this.memory.recordView;
    const window = this.memory.window(this.memory.windowCapacity);
    for (let i = this.handedOver; i < this.synced; i++) {
      const at = i * MEMO_RECORD_BYTES;
      if (records[at] !== MemoKind.String) continue;
      if (memo.stored(i) === undefined) memo.keep(i, this.strings.decode(window, view.getUint32(at + 4, true), view.getUint32(at + 8, true)));
      records[at] = MemoKind.JsString; // its field, action and frames bytes stay as the scanner wrote them
    }
    this.handedOver = this.synced;
  }

  /**
   * The window region for the next window, with room in the memo records for the memo's
   * `memoLength` values and what `length` bytes can add; fresh views (reserving may grow the memory, which detaches the old ones).
   */
  prepareWindow(length: number, memoLength: number): Uint8Array {
    if (!this.retired && !this.memory.reserveRecords(memoLength + Math.ceil(length * MEMO_RECORDS_PER_INPUT_BYTE) + 16)) this.retired = true;
    return this.memory.window(this.memory.windowCapacity);
  }

  /** The decoder decodes `buf` next: the scanner takes part when it is this scanner's window. */
  beginWindow(buf: Uint8Array): void {
    this.active = !this.retired && this.memory.holds(buf);
    if (this.active) this.memory.configure(buf.length);
  }

  /**
   * Decodes the run of entries from `pos` of the window `buf` into `columns` for `device`, pushing
   * `entryValue` on `stack` for each; returns the offset where the JavaScript decoder goes on.
   */
  decodeRun(buf: Uint8Array, pos: number, memo: PickleMemo, stack: unknown[], columns: ColumnBuilder, device: number): number {
    if (this.retired || !this.active || !this.memory.holds(buf)) return pos;
    this.attach(memo);
    if (!this.sync(memo)) return pos;
    for (;;) {
      const stop = this.wasm.scan(pos, memo.length) as Stop;
      const count = this.wasm.rowsDecoded();
      if (count > 0) {
        columns.appendRows(device, this.memory.rows, count);
        for (let i = 0; i < count; i++) stack.push(this.entryValue);
      }
      memo.extendTo(this.wasm.memoLengthAfter());
      this.synced = memo.length;
      pos = this.wasm.stoppedAt();
      if (stop !== Stop.Full) return pos;
      if (count < ROW_CAPACITY) {
        this.retired = true; // the memo records are full (only where the memo jumped, BINPUT to a far index)
        return pos;
      }
    }
  }

  /** The memo fetches the scanner's values from its records from now on. */
  private attach(memo: PickleMemo): void {
    if (this.attached === memo) return;
    if (this.attached !== null) throw new Error("an entry scanner serves one pickle memo");
    this.attached = memo;
    this.synced = 0;
    memo.overwritten = [];
    memo.resolve = (index) => (index < this.synced ? this.valueOf(index) : undefined);
  }

  /** Records for what the JavaScript decoder stored since the last run; false when they do not fit. */
  private sync(memo: PickleMemo): boolean {
    if (memo.length > this.memory.memoRecords) {
      this.retired = true;
      return false;
    }
    for (let i = this.synced; i < memo.length; i++) this.classify(i, memo.stored(i));
    const overwritten = memo.overwritten!;
    for (const i of overwritten) this.classify(i, memo.stored(i));
    overwritten.length = 0;
    this.synced = memo.length;
    return true;
  }

  private classify(index: number, value: unknown): void {
    const at = index * MEMO_RECORD_BYTES;
    const records = this.memory.records;
    if (typeof value === "string") {
      records[at] = MemoKind.JsString;
      records[at + 1] = fieldOf(value) & 0xff;
      records[at + 2] = actionOf(value);
      records[at + 3] = value === "frames" ? 1 : 0;
    } else {
      records[at] = value === undefined ? MemoKind.Empty : value === this.entryValue ? MemoKind.Entry : value === SKIPPED ? MemoKind.Skipped : MemoKind.JsValue;
    }
  }

  /** The value of a memo record the scanner wrote (undefined for the decoder's own and for none). */
  private valueOf(index: number): unknown {
    const at = index * MEMO_RECORD_BYTES;
    switch (this.memory.records[at] as MemoKind) {
      case MemoKind.Entry:
        return this.entryValue;
      case MemoKind.Skipped:
        return SKIPPED;
      case MemoKind.String: {
        const view = this.memory.recordView;
        return this.strings.decode(this.memory.window(this.memory.windowCapacity), view.getUint32(at + 4, true), view.getUint32(at + 8, true));
      }
      default:
        return undefined;
    }
  }
}

/**
 * The scanner's table of strings with a meaning: each [length, field, action, frames, bytes...]
 * for the entry keys, the action names and "frames", classified by the very functions the
 * JavaScript decoder uses. Returns how many were written.
 */
function writeNames(out: Uint8Array): number {
  const names = new Set<string>([...ENTRY_KEYS, ...Object.values(ACTION_NAMES), "frames"]);
  let at = 0;
  for (const name of names) {
    const bytes = new TextEncoder().encode(name);
    out[at] = bytes.length;
    out[at + 1] = fieldOf(name) & 0xff;
    out[at + 2] = actionOf(name) as Action;
    out[at + 3] = name === "frames" ? 1 : 0;
    out.set(bytes, at + 4);
    at += 4 + bytes.length;
  }
  return names.size;
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}
