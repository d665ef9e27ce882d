/**
 * The importer's stated limits. A file can be a valid snapshot and still ask for more work or memory
 * than any real run needs (a gzip bomb, memo references that fan out, 100,000 streams); each such
 * dimension has a limit here, with a default that covers every real trace by a wide margin, and
 * ReadTraceOptions.limits (the CLI's `--limits key:value,...`) raises or lowers it. Exceeding one
 * is a TraceError of one line naming the file, the limit, the value found and the option:
 *
 *   lakebed: t.pickle: device 0: 100000 streams exceed the limit of 256 streams per device (raise it with --limits streams:N)
 *
 * Each limit is checked where its value is first known, so the work before the refusal is bounded
 * by the limit, not by the file: decompression stops at the byte past the limit, a tree walk at the
 * value past it, a new device list or stream as it is opened.
 *
 * Defaults, against the real traces (../shared/traces and the recordings in test/fixtures):
 *   decompressedBytes  4 GiB - 1 (real snapshots reach about 3 GiB with context="all"). A snapshot
 *                      pickle is read as a stream, so the limit bounds the time a gzip bomb takes,
 *                      not memory, and may be raised without bound; a trace read whole (JSON,
 *                      Arrow, a gzip trace in memory) is held in one buffer, at most MAX_HELD_BYTES
 *   objects            20 million values in segments, settings and annotations, each counted every
 *                      time a memo reference reaches it (stack frames are skipped, not counted); an
 *                      80 GiB device's final state is at most about 1 million blocks
 *   depth              1,000 nested containers (snapshots nest 6 deep)
 *   devices            1,024 device ordinals in one snapshot (one process sees at most 16 GPUs)
 *   streams            256 streams per device (real runs use 1 to about 20)
 *   segments           1 million segments (an 80 GiB device holds at most 40,960 of 2 MiB)
 *   blocksPerSegment   1 million blocks in one segment (blocks are at least 512 bytes)
 *   columns            64 fields in an Arrow file's schema (lakebed's format has 7): arrow-js builds
 *                      every field of every record batch, which a file of 100,000 one-byte columns
 *                      made take 47 s
 *   dictionaryEntries  1,024 entries in one Arrow dictionary batch (the action column's dictionary
 *                      holds the 10 action names): arrow-js builds every entry as a string
 *
 * The Arrow format's own values (lakebed.trace metadata: devices, streams, segments, blocks, and
 * the values and nesting of the JSON) are held to the same limits as a snapshot's (arrow-limits.ts).
 */
import { TraceError } from "./trace-error.js";

export interface ImportLimits {
  decompressedBytes: number;
  objects: number;
  depth: number;
  devices: number;
  streams: number;
  segments: number;
  blocksPerSegment: number;
  columns: number;
  dictionaryEntries: number;
}

/** The most bytes one Node buffer (and a wasm32 memory) holds: the most a trace read whole can have. */
export const MAX_HELD_BYTES = 2 ** 32 - 1;

export const DEFAULT_LIMITS: Readonly<ImportLimits> = Object.freeze({
  decompressedBytes: MAX_HELD_BYTES,
  objects: 20_000_000,
  depth: 1_000,
  devices: 1_024,
  streams: 256,
  segments: 1_000_000,
  blocksPerSegment: 1_000_000,
  columns: 64,
  dictionaryEntries: 1_024,
});

/** What each limit counts, as the refusal words it: "<found> <noun> exceed the limit of <limit> <noun><per>". */
const WORDING: Record<keyof ImportLimits, { noun: string; per: string }> = {
  decompressedBytes: { noun: "decompressed bytes", per: "" },
  objects: { noun: "values", per: " in segments, settings and annotations (counted at every memo reference)" },
  depth: { noun: "levels of nesting", per: "" },
  devices: { noun: "devices", per: "" },
  streams: { noun: "streams", per: " per device" },
  segments: { noun: "segments", per: "" },
  blocksPerSegment: { noun: "blocks", per: " in one segment" },
  columns: { noun: "columns", per: " in an Arrow schema (fields at any depth)" },
  dictionaryEntries: { noun: "entries", per: " in one Arrow dictionary" },
};

export const LIMIT_KEYS = Object.keys(DEFAULT_LIMITS) as (keyof ImportLimits)[];

/** The defaults with `overrides` applied (undefined keys keep their default). */
export function importLimits(overrides: Partial<ImportLimits> = {}): ImportLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const key of LIMIT_KEYS) {
    const value = overrides[key];
    if (value !== undefined) limits[key] = value;
  }
  return limits;
}

/**
 * Parses `key:value,key:value` (the CLI's --limits) into overrides; throws a RangeError naming the
 * first bad item (an unknown key, or a value that is not a whole number of at least 1).
 */
export function parseLimits(text: string): Partial<ImportLimits> {
  const out: Partial<ImportLimits> = {};
  for (const item of text.split(",")) {
    if (item.trim() === "") continue;
    const [key, value, extra] = item.split(":").map((s) => s.trim());
    if (!LIMIT_KEYS.includes(key as keyof ImportLimits)) {
      throw new RangeError(`unknown limit '${key.slice(0, 40)}' (the limits are ${LIMIT_KEYS.join(", ")})`);
    }
    const n = Number(value);
    if (extra !== undefined || !/^\d+$/.test(value ?? "") || !Number.isSafeInteger(n) || n < 1) {
      throw new RangeError(`limit ${key} needs a whole number of at least 1, not '${String(value).slice(0, 40)}'`);
    }
    out[key as keyof ImportLimits] = n;
  }
  return out;
}

/** The refusal for `found` over `limits[key]`, as one line naming the file and the option. */
export function limitExceeded(
  file: string,
  key: keyof ImportLimits,
  found: number | string,
  limits: ImportLimits,
  where: { device?: number; eventIndex?: number; byteOffset?: number } = {},
): TraceError {
  const { noun, per } = WORDING[key];
  return new TraceError(file, `${found} ${noun} exceed the limit of ${limits[key]} ${noun}${per} (raise it with --limits ${key}:N)`, where);
}
