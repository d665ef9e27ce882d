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
import type { ImportLimits } from "./import-limits.js";

export type PickleDecoderChoice = "wasm" | "js";

/** A trace entry without stack frames takes about 70 bytes of pickle; sizing columns by it overshoots for files with frames. */
const PICKLE_BYTES_PER_ENTRY = 64;

/**
 * `decoder`: "wasm" decodes runs of trace entries with the WebAssembly entry scanner where it is
 * available; "js" decodes everything in JavaScript. Both give the same result. `limits`: the
 * decoder's share of the stated limits (depth, and devices as each device's list opens).
 */
export function decodeSnapshotPickle(
  bytes: Uint8Array,
  source: { file: string; gzip: boolean },
  onProgress: ((bytesDone: number, bytesTotal: number) => void) | undefined,
  decoder: PickleDecoderChoice,
  limits: ImportLimits,
): DecodedSnapshot {
  const columns = new ColumnBuilder(source.file, Math.floor(bytes.length / PICKLE_BYTES_PER_ENTRY));
  const shaper = new SnapshotShaper(source.file, columns, limits, decoder === "wasm" ? bytes : undefined);
  const root = decodePickle(bytes, { file: source.file, shaper, onProgress, limits });
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
