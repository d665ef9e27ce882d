/**
 * A PyTorch snapshot pickle -> DecodedSnapshot. The top-level value is the snapshot dict
 * (reference B3), or a bare segments list (`torch.cuda.memory_snapshot()` pickled by a user).
 * The pickle is read as a stream (pickle-stream.ts) from a file, a gzip stream or memory.
 */
import { PickleDecoder } from "./pickle-decoder.js";
import { ColumnBuilder } from "./column-builder.js";
import { describe, isRecord } from "./decoded-values.js";
import { SnapshotShaper } from "./snapshot-shaper.js";
import { TraceError } from "./trace-error.js";
import type { DecodedSnapshot } from "./assemble-trace.js";
import type { ImportLimits } from "./import-limits.js";
import { DEFAULT_WINDOW_BYTES, decodeStream, decodeStreamSync, type PickleSource, type StreamOptions } from "./pickle-stream.js";

export type PickleDecoderChoice = "wasm" | "js";

/** A trace entry without stack frames takes about 70 bytes of pickle; sizing columns by it overshoots for files with frames. */
const PICKLE_BYTES_PER_ENTRY = 64;
/** columns for a stream of unknown length start at this many rows and double */
const UNKNOWN_LENGTH_ROWS = 1 << 16;

export interface PickleReadOptions {
  /** "wasm" decodes runs of trace entries with the WebAssembly entry scanner where it is available; "js" decodes everything in JavaScript. Both give the same result. */
  decoder: PickleDecoderChoice;
  /** the decoder's share of the stated limits (depth, and devices as each device's list opens) */
  limits: ImportLimits;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** the usual window (pickle-stream.ts); tests make it small to cut the input everywhere */
  windowBytes?: number;
  /** told the pickle offset reached so far, for the internal-error line */
  onReached?: (pickleOffset: number) => void;
}

interface Decode {
  columns: ColumnBuilder;
  shaper: SnapshotShaper;
  stream: StreamOptions;
}

function begin(source: PickleSource, file: string, opts: PickleReadOptions): Decode {
  const columns = new ColumnBuilder(file, source.total >= 0 ? Math.floor(source.total / PICKLE_BYTES_PER_ENTRY) : UNKNOWN_LENGTH_ROWS);
  // no larger than the input where its length is known: a small trace in memory gets a small window
  // (and the scanner a small memory), not the 8 MiB a stream reads at a time
  const windowBytes = Math.max(1, Math.min(opts.windowBytes ?? DEFAULT_WINDOW_BYTES, source.total >= 0 ? source.total : Infinity));
  const shaper = new SnapshotShaper(file, columns, opts.limits, opts.decoder === "wasm" ? windowBytes : undefined);
  const decoder = new PickleDecoder({ file, shaper, limits: opts.limits });
  return { columns, shaper, stream: { file, decoder, scanner: shaper.scanner, windowBytes, wholeInMemory: opts.windowBytes === undefined, onProgress: opts.onProgress, onReached: opts.onReached } };
}

/** Decodes the snapshot pickle of a source whose reads answer at once (memory, a plain file). */
export function decodeSnapshotPickleSync(source: PickleSource, info: { file: string; gzip: boolean }, opts: PickleReadOptions): DecodedSnapshot {
  const decode = begin(source, info.file, opts);
  try {
    return finish(decodeStreamSync(source, decode.stream), decode, info);
  } finally {
    source.close();
  }
}

/** Decodes the snapshot pickle of any source (a gzip stream). */
export async function decodeSnapshotPickle(source: PickleSource, info: { file: string; gzip: boolean }, opts: PickleReadOptions): Promise<DecodedSnapshot> {
  const decode = begin(source, info.file, opts);
  try {
    return finish(await decodeStream(source, decode.stream), decode, info);
  } finally {
    source.close();
  }
}

function finish(root: unknown, { columns, shaper }: Decode, source: { file: string; gzip: boolean }): DecodedSnapshot {
  const base = { file: source.file, format: "pickle" as const, gzip: source.gzip };
  if (Array.isArray(root)) {
    return { ...base, segments: root, events: [], allocatorSettings: undefined, annotations: undefined };
  }
  if (!isRecord(root) || !("segments" in root || "device_traces" in root)) {
    throw new TraceError(source.file, `not a PyTorch memory snapshot: the pickle holds ${describe(root)} without segments or device_traces`);
  }
  if (root.device_traces !== undefined && !shaper.isDeviceTraces(root.device_traces)) {
    throw new TraceError(source.file, `malformed snapshot: device_traces is ${describe(root.device_traces)}, expected a list of lists`);
  }
  const events = columns.finish();
  const byDevice = new Map(events.map((e) => [e.device, e]));
  for (const list of shaper.deviceLists) {
    const built = byDevice.get(list.device)?.length ?? 0;
    if (list.appended !== built) {
      throw new TraceError(source.file, `malformed snapshot: device_traces[${list.device}] holds ${list.appended} entries but ${built} were decoded (an entry referenced twice?)`, { device: list.device });
    }
  }
  return { ...base, segments: root.segments, events, allocatorSettings: root.allocator_settings, annotations: root.external_annotations };
}
