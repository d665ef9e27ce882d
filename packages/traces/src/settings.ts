/**
 * `allocator_settings` (reference B6) -> AllocatorSettings. Files older than about PyTorch 2.3 have
 * no such key: they get null, and consumers fall back to PyTorch's defaults.
 */
import type { AllocatorSettings, DeviceTrace } from "./model.js";
import { TraceError } from "./trace-error.js";
import { describe, isRecord } from "./decoded-values.js";

/** The 16 roundup buckets, keyed by their start in MiB as the snapshot writes them. */
const ROUNDUP_BUCKET_KEYS = ["1", "2", "4", "8", "16", "32", "64", "128", "256", "512", "1024", "2048", "4096", "8192", "16384", "32768"];

export function readAllocatorSettings(value: unknown, file: string): AllocatorSettings | null {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) throw new TraceError(file, `malformed snapshot: allocator_settings is ${describe(value)}, expected a dict`);
  const raw: Record<string, string | number | boolean> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") raw[key] = v;
    else if (typeof v === "bigint") raw[key] = Number(v);
    else if (key !== "roundup_power2_divisions" && v !== null) raw[key] = displayed(v);
  }
  const divisions = value.roundup_power2_divisions;
  const roundupPower2Divisions = ROUNDUP_BUCKET_KEYS.map((key, bucket) => {
    if (divisions === undefined || divisions === null) return 0;
    const d = Array.isArray(divisions) ? divisions[bucket] : isRecord(divisions) ? divisions[key] : undefined;
    if (d === undefined) return 0;
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0) {
      throw new TraceError(file, `malformed snapshot: roundup_power2_divisions[${key}] is ${describe(d)}, expected a whole number`);
    }
    return d;
  });
  const maxSplit = value.max_split_size;
  return {
    conf: typeof value.PYTORCH_CUDA_ALLOC_CONF === "string" ? value.PYTORCH_CUDA_ALLOC_CONF : "",
    maxSplitSize: typeof maxSplit === "number" && maxSplit >= 0 ? maxSplit : -1,
    garbageCollectionThreshold: typeof value.garbage_collection_threshold === "number" ? value.garbage_collection_threshold : 0,
    expandableSegments: value.expandable_segments === true,
    roundupPower2Divisions,
    raw,
  };
}

/**
 * A nested setting as text, for display. Decoded pickle values may hold integers too large for a
 * number (bigint, which JSON.stringify refuses) and, through the pickle memo, may even contain
 * themselves; such a value is described instead (the fuzzers found both).
 */
function displayed(v: unknown): string {
  try {
    return JSON.stringify(v, (_key, x) => (typeof x === "bigint" ? x.toString() : x)) ?? String(v);
  } catch {
    return describe(v);
  }
}

/**
 * The events before which the recording allocator says torch.cuda.empty_cache() was called
 * (DeviceTrace.emptyCacheAt): allocator_settings' `lakebed_empty_cache_at`, "i,j,k" (a string, so
 * that every reader and the Arrow metadata carry it as recorded), written by liblakebed_torch for the
 * one device it records. undefined when the key is absent (a PyTorch snapshot); indices past the
 * trace or out of order are refused, as a hand-edited file may hold them.
 */
export function emptyCacheMarks(settings: AllocatorSettings | null, events: number, file: string): number[] | undefined {
  const text = settings?.raw.lakebed_empty_cache_at;
  if (text === undefined) return undefined;
  const marks = String(text) === "" ? [] : String(text).split(",").map(Number);
  marks.forEach((m, i) => {
    if (!Number.isInteger(m) || m < 0 || m > events || (i > 0 && m <= marks[i - 1])) {
      throw new TraceError(file, `malformed snapshot: allocator_settings lakebed_empty_cache_at "${String(text)}" is not ascending event indices within the trace's ${events} events`);
    }
  });
  return marks;
}

/**
 * The device's total memory as the recording allocator knew it (DeviceTrace.deviceTotalBytes):
 * allocator_settings' `lakebed_device_total`, a whole number of bytes as a string, written by
 * liblakebed_torch. undefined when the key is absent (a PyTorch snapshot: core-sim infers the total
 * from the trace's expandable reservations); anything but a positive whole number is refused.
 */
export function recordedDeviceTotal(settings: AllocatorSettings | null, file: string): number | undefined {
  const text = settings?.raw.lakebed_device_total;
  if (text === undefined) return undefined;
  const total = /^[0-9]+$/.test(String(text)) ? Number(text) : NaN;
  if (!Number.isSafeInteger(total) || total <= 0) {
    throw new TraceError(file, `malformed snapshot: allocator_settings lakebed_device_total "${String(text)}" is not a positive whole number of bytes`);
  }
  return total;
}

/** What the recorder says of a device that has events: its empty_cache calls (emptyCacheMarks) and its total memory (recordedDeviceTotal). */
export function withRecordedSettings(d: DeviceTrace, settings: AllocatorSettings | null, file: string): DeviceTrace {
  if (d.events.length === 0) return d;
  const marks = emptyCacheMarks(settings, d.events.length, file);
  const total = recordedDeviceTotal(settings, file);
  let out = marks === undefined ? d : { ...d, emptyCacheAt: marks };
  if (total !== undefined) out = { ...out, deviceTotalBytes: total };
  return out;
}

