/**
 * A snapshot saved with `json.dump` (tuples become arrays), already parsed -> DecodedSnapshot, through
 * the same column builder as pickles.
 */
import { ColumnBuilder } from "./column-builder.js";
import { describe, isRecord } from "./decoded-values.js";
import { TraceError } from "./trace-error.js";
import type { DecodedSnapshot } from "./assemble-trace.js";
import { limitExceeded, type ImportLimits } from "./import-limits.js";

export function decodeSnapshotJson(root: unknown, source: { file: string; gzip: boolean }, limits: ImportLimits): DecodedSnapshot {
  const { file } = source;
  const base = { file, format: "json" as const, gzip: source.gzip };
  if (Array.isArray(root)) {
    return { ...base, segments: root, events: [], allocatorSettings: undefined, annotations: undefined };
  }
  if (!isRecord(root) || !("segments" in root || "device_traces" in root)) {
    throw new TraceError(file, `not a PyTorch memory snapshot: the JSON holds ${describe(root)} without segments or device_traces`);
  }
  const columns = new ColumnBuilder(file);
  const traces = root.device_traces ?? [];
  if (!Array.isArray(traces)) throw new TraceError(file, `malformed snapshot: device_traces is ${describe(traces)}, expected a list of lists`);
  if (traces.length > limits.devices) throw limitExceeded(file, "devices", traces.length, limits);
  traces.forEach((entries, device) => {
    if (!Array.isArray(entries)) throw new TraceError(file, `malformed snapshot: device_traces[${device}] is ${describe(entries)}, expected a list`);
    entries.forEach((entry, i) => {
      if (!isRecord(entry)) throw new TraceError(file, `malformed snapshot: a trace entry is ${describe(entry)}, expected a dict`, { device, eventIndex: i });
      columns.beginRow(device);
      for (const key in entry) columns.setField(key, entry[key]);
    });
  });
  return { ...base, segments: root.segments, events: columns.finish(), allocatorSettings: root.allocator_settings, annotations: root.external_annotations };
}
