/**
 * A PyTorch snapshot pickle -> DecodedSnapshot. The top-level value is the snapshot dict
 * (reference B3), or a bare segments list (`torch.cuda.memory_snapshot()` pickled by a user).
 */
import { decodePickle } from "./pickle-decoder.js";
import { ColumnBuilder } from "./column-builder.js";
import { describe, isRecord } from "./decoded-values.js";
import { SnapshotShaper } from "./snapshot-shaper.js";
import { TraceError } from "./trace-error.js";
import type { DecodedSnapshot } from "./assemble-trace.js";

export type PickleDecoderChoice = "wasm" | "js";

/** A trace entry without stack frames takes about 70 bytes of pickle; sizing columns by it overshoots for files with frames. */
const PICKLE_BYTES_PER_ENTRY = 64;

/**
 * `decoder`: "wasm" (the default) decodes runs of trace entries with the WebAssembly entry scanner
 * where it is available; "js" decodes everything in JavaScript. Both give the same result.
 */
export function decodeSnapshotPickle(
  bytes: Uint8Array,
  source: { file: string; gzip: boolean },
  onProgress?: (bytesDone: number, bytesTotal: number) => void,
  decoder: PickleDecoderChoice = "wasm",
): DecodedSnapshot {
  const columns = new ColumnBuilder(source.file, Math.floor(bytes.length / PICKLE_BYTES_PER_ENTRY));
  const shaper = new SnapshotShaper(source.file, columns, decoder === "wasm" ? bytes : undefined);
  const root = decodePickle(bytes, { file: source.file, shaper, onProgress });
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
  for (const list of shaper.deviceLists) {
    const built = events.find((e) => e.device === list.device)?.length ?? 0;
    if (list.appended !== built) {
      throw new TraceError(source.file, `malformed snapshot: device_traces[${list.device}] holds ${list.appended} entries but ${built} were decoded (an entry referenced twice?)`, { device: list.device });
    }
  }
  return { ...base, segments: root.segments, events, allocatorSettings: root.allocator_settings, annotations: root.external_annotations };
}
