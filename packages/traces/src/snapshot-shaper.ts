/**
 * Tells the pickle decoder how a PyTorch snapshot is laid out (reference B3-B5), so that it can
 * stream `device_traces` entries straight into typed columns and skip stack frames:
 *
 *   { "segments": [...],                     ordinary values (a few thousand dicts at most)
 *     "device_traces": [                     DeviceTracesSink
 *        [ {entry}, {entry}, ... ],          DeviceEventsSink per device ordinal, in order
 *        ... ],                              each {entry} is ENTRY: its items go to ColumnBuilder
 *     ... }
 *   any container under a "frames" key      SKIPPED (strings inside are still memoized)
 *
 * Pickle writes a container before its items, so the shaper recognises a container by the value
 * beneath it on the stack (see PickleShaper.open): its dict key, or the list receiving it, or the
 * previous item of that list.
 */
import { ContainerSink, SKIPPED, type ContainerKind, type PickleShaper } from "./pickle-shaping.js";
import { fieldOf, type ColumnBuilder, type Field } from "./column-builder.js";
import { TraceError } from "./trace-error.js";
import { EntryScanner } from "./entry-scanner.js";
import type { PickleMemo } from "./pickle-memo.js";
import { limitExceeded, type ImportLimits } from "./import-limits.js";

/** `device_traces`: its items must be the per-device lists. */
class DeviceTracesSink extends ContainerSink {
  constructor(private readonly file: string) {
    super();
  }
  setItems(): void {
    throw new TraceError(this.file, "malformed snapshot: device_traces is a dict, expected a list");
  }
  appendItems(items: unknown[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      if (!(items[i] instanceof DeviceEventsSink)) {
        throw new TraceError(this.file, "malformed snapshot: an item of device_traces is not a list of trace entries");
      }
    }
  }
}

/** `device_traces[d]`: counts the entries appended, to catch an entry referenced twice. */
export class DeviceEventsSink extends ContainerSink {
  appended = 0;
  override readonly itemsAreFlatDicts = true;
  constructor(
    private readonly file: string,
    readonly device: number,
    private readonly entry: ContainerSink,
    private readonly shaper: SnapshotShaper,
  ) {
    super();
  }
  override decodeItems(buf: Uint8Array, pos: number, memo: PickleMemo, stack: unknown[]): number {
    const owner = stack[stack.length - 1];
    // what open() would answer with the entry sink for: the next item of this list
    if (owner !== this && owner !== this.entry) return pos;
    return this.shaper.decodeEntryRun(buf, pos, memo, stack);
  }
  setItems(): void {
    throw new TraceError(this.file, `malformed snapshot: device_traces[${this.device}] is a dict, expected a list`);
  }
  appendItems(items: unknown[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      if (items[i] !== this.entry) {
        throw new TraceError(this.file, "malformed snapshot: a trace entry is not a dict", {
          device: this.device,
          eventIndex: this.appended,
        });
      }
      this.appended++;
    }
  }
}

/** One trace entry being decoded: its items go to the column builder's pending entry. */
class EntrySink extends ContainerSink {
  override readonly row: Float64Array;
  constructor(private readonly columns: ColumnBuilder) {
    super();
    this.row = columns.pending;
  }
  /**
   * A value the fast path handed over (setOther) and the builder refused, held until the entry's
   * SETITEMS: the general loop hands the same pairs over only there (setItems), so an opcode later in
   * the entry that fails is reported first, and the error does not depend on where a streamed
   * input's windows end (the fast path stops at a window's end; test/streaming-import.test.ts).
   */
  private refused: unknown = undefined;
  setItems(items: unknown[], from: number, to: number): void {
    const refused = this.refused;
    if (refused !== undefined) {
      this.refused = undefined;
      throw refused; // its pair came before these
    }
    for (let i = from; i < to; i += 2) this.columns.setField(items[i], items[i + 1]);
  }
  override keyCode(key: string): number {
    return fieldOf(key);
  }
  override setOther(code: number, value: unknown): void {
    if (this.refused !== undefined) return; // the first refusal stands, as setItems' first failing pair
    try {
      this.columns.setOther(code as Field, value);
    } catch (e) {
      this.refused = e;
    }
  }
  appendItems(): void {
    this.columns.setField("action", undefined); // a list where an entry dict belongs: reported as a bad entry
  }
}

export class SnapshotShaper implements PickleShaper {
  private readonly deviceTraces: DeviceTracesSink;
  private readonly entry: EntrySink;
  /** the per-device lists in order; index = device ordinal */
  readonly deviceLists: DeviceEventsSink[] = [];

  /** the WebAssembly fast path over runs of entries, or null */
  readonly scanner: EntryScanner | null;

  /** `scannerWindow`, when given: use the entry scanner, with a window region of that many bytes. */
  constructor(
    private readonly file: string,
    private readonly columns: ColumnBuilder,
    /** devices: a device list past the limit is refused as it opens, before its entries are decoded */
    private readonly limits: ImportLimits,
    scannerWindow?: number,
  ) {
    this.deviceTraces = new DeviceTracesSink(file);
    this.entry = new EntrySink(columns);
    this.scanner = scannerWindow === undefined ? null : EntryScanner.create(this.entry, scannerWindow);
  }

  /** Decodes the run of trace entries at `pos` of the window `buf` with the entry scanner (see ContainerSink.decodeItems). */
  decodeEntryRun(buf: Uint8Array, pos: number, memo: PickleMemo, stack: unknown[]): number {
    if (this.scanner === null) return pos;
    return this.scanner.decodeRun(buf, pos, memo, stack, this.columns, this.deviceLists.length - 1);
  }

  open(kind: ContainerKind, owner: unknown): ContainerSink | undefined {
    if (kind === "dict" && owner === this.entry) {
      // the common case first: the next trace entry of the same device
      this.columns.beginRow(this.deviceLists.length - 1);
      return this.entry;
    }
    if (owner === "frames") return SKIPPED;
    if (kind === "list") {
      if (owner === "device_traces") return this.deviceTraces;
      if (owner === this.deviceTraces || owner instanceof DeviceEventsSink) {
        if (this.deviceLists.length >= this.limits.devices) throw limitExceeded(this.file, "devices", `${this.deviceLists.length + 1} or more`, this.limits);
        const list = new DeviceEventsSink(this.file, this.deviceLists.length, this.entry, this);
        this.deviceLists.push(list);
        return list;
      }
      return undefined;
    }
    if (owner === this.entry || owner instanceof DeviceEventsSink) {
      this.columns.beginRow(this.deviceLists.length - 1);
      return this.entry;
    }
    return undefined;
  }

  /** The value the decoder leaves where `device_traces` was; callers use the builder instead. */
  isDeviceTraces(value: unknown): boolean {
    return value === this.deviceTraces;
  }
}
