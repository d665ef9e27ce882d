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
/**
 * The scanner's offsets are i32 (assembly/entry-scanner.ts): it is shown at most the input's first
 * 2 GiB - 1 bytes, where a run that reaches that end stops as at the end of any input, and the
 * JavaScript decoder takes the rest of a larger input. Offsets past it came back negative, and the
 * decoder read `undefined` as an opcode (a 3 GiB snapshot ended in a TypeError).
 */
const SCANNER_MAX_INPUT_BYTES = 2 ** 31 - 1;
/** wasm32 memory ends at 4 GiB */
const MAX_MEMORY_BYTES = 2 ** 32 - PAGE_BYTES;
/** every MEMOIZE follows an opcode of at least one byte, so a pickle of n bytes memoizes at most n/2 values */
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
 * One scanner instance with its memory laid out, once and for all, for an input of a given length:
 * names, rows, the input, then the memo records. The memory never grows afterwards, so a view of
 * the input in it stays valid: readTrace reads a file straight into it (inputView) and decodes it
 * there, sparing a copy of the whole input (and the first touch of its pages, which on a 24 MB
 * trace costs more than the copy itself).
 */
class ScannerMemory {
  readonly wasm: ScannerExports;
  readonly input: Uint8Array;
  readonly rows: DecodedRows;
  readonly records: Uint8Array;
  readonly recordView: DataView;
  readonly memoRecords: number;

  constructor(module: WebAssembly.Module, inputLength: number) {
    this.wasm = new WebAssembly.Instance(module, {}).exports as unknown as ScannerExports;
    const memory = this.wasm.memory;
    const namesPtr = memory.buffer.byteLength;
    const rowsPtr = namesPtr + NAMES_BYTES;
    const inputPtr = rowsPtr + ROW_CAPACITY * ROW_BYTES;
    const memoPtr = align8(inputPtr + inputLength);
    this.memoRecords = Math.min(Math.ceil(inputLength * MEMO_RECORDS_PER_INPUT_BYTE) + 16, Math.floor((MAX_MEMORY_BYTES - memoPtr) / MEMO_RECORD_BYTES));
    if (this.memoRecords <= 0) throw new RangeError("input too large for the entry scanner");
    memory.grow(Math.ceil((memoPtr + this.memoRecords * MEMO_RECORD_BYTES - namesPtr) / PAGE_BYTES));
    const buffer = memory.buffer;
    const names = writeNames(new Uint8Array(buffer, namesPtr, NAMES_BYTES));
    this.wasm.configure(inputPtr, Math.min(inputLength, SCANNER_MAX_INPUT_BYTES), 0, namesPtr, names, rowsPtr, ROW_CAPACITY, memoPtr, this.memoRecords);
    this.input = new Uint8Array(buffer, inputPtr, inputLength);
    const column = (k: number) => new Float64Array(buffer, rowsPtr + k * 8 * ROW_CAPACITY, ROW_CAPACITY);
    this.rows = { addr: column(0), size: column(1), stream: column(2), timeUs: column(3), action: new Uint8Array(buffer, rowsPtr + 4 * 8 * ROW_CAPACITY, ROW_CAPACITY) };
    this.records = new Uint8Array(buffer, memoPtr, this.memoRecords * MEMO_RECORD_BYTES);
    this.recordView = new DataView(buffer, memoPtr, this.memoRecords * MEMO_RECORD_BYTES);
  }
}

/** Inputs laid out in a scanner memory by inputView, by their view. */
const prepared = new WeakMap<Uint8Array, ScannerMemory>();

/**
 * A buffer of `length` bytes inside a new scanner's memory, for the caller to fill with the input
 * before decoding it; null when the fast path is not available or the input is too large for it.
 */
export function inputView(length: number): Uint8Array | null {
  const module = scannerModule();
  if (module === null || length <= 0) return null;
  try {
    const memory = new ScannerMemory(module, length);
    prepared.set(memory.input, memory);
    return memory.input;
  } catch {
    return null; // no room in wasm32 memory: the JavaScript decoder reads it
  }
}

export class EntryScanner {
  private readonly wasm: ScannerExports;
  private readonly strings = new StringDecoder();
  private attached: PickleMemo | null = null;
  /** memo indices below this are in the records: the scanner's own, or classified from the memo */
  private synced = 0;
  /** set when the memo outgrew the records: the JavaScript decoder does the rest */
  private retired = false;

  /**
   * A scanner for one decode of `buf`, or null when the fast path is not available for it. `buf`
   * is used where it lies when inputView made it, else copied into a new scanner memory.
   */
  static create(buf: Uint8Array, entryValue: unknown): EntryScanner | null {
    let memory = prepared.get(buf);
    if (memory === undefined) {
      const view = inputView(buf.length);
      if (view === null) return null;
      view.set(buf);
      memory = prepared.get(view)!;
    }
    return new EntryScanner(memory, buf, entryValue);
  }

  private constructor(
    private readonly memory: ScannerMemory,
    private readonly buf: Uint8Array,
    /** the value the decoder stands for a decoded entry with (its entry sink) */
    private readonly entryValue: unknown,
  ) {
    this.wasm = memory.wasm;
  }

  /**
   * Decodes the run of entries from `pos` into `columns` for `device`, pushing `entryValue` on
   * `stack` for each; returns the offset where the JavaScript decoder goes on.
   */
  decodeRun(pos: number, memo: PickleMemo, stack: unknown[], columns: ColumnBuilder, device: number): number {
    if (this.retired || pos >= SCANNER_MAX_INPUT_BYTES) return pos;
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
        this.retired = true; // the memo records are full (only for inputs near wasm32's limit)
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
        return this.strings.decode(this.buf, view.getUint32(at + 4, true), view.getUint32(at + 8, true));
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
