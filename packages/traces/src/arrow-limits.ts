/**
 * The importer's stated limits (import-limits.ts) on lakebed's Arrow trace files, so that a hostile
 * `.arrow` is refused with the same one line as a hostile snapshot, before the work it asks for:
 *
 *   - before arrow-js reads the file: the schema's fields (`columns`) and the largest dictionary
 *     batch (`dictionaryEntries`), which arrow-js would build one object each; the framing walk
 *     (arrow-framing.ts) has measured both, and has already held every declared length and offset
 *     to the bytes of the file (a truncated body, a batch claiming more rows than its body holds);
 *   - once the `lakebed.trace` metadata is parsed, before its shape is checked or anything is built
 *     on it: the counts a snapshot is held to (devices, streams per device, segments, blocks per
 *     segment), and its values and nesting walked as a snapshot's are (snapshot-bounds.ts). Use
 *     events (a device's `access`) are columns of numbers, checked against the events where they are
 *     read (access-json.ts), and are not counted as values: a long recorded run holds millions.
 */
import type { ArrowFileShape } from "./arrow-framing.js";
import { limitExceeded, type ImportLimits } from "./import-limits.js";
import { BoundedWalk } from "./snapshot-bounds.js";

export function checkArrowFileLimits(shape: ArrowFileShape, file: string, limits: ImportLimits): void {
  if (shape.columns > limits.columns) throw limitExceeded(file, "columns", shape.columns, limits);
  if (shape.largestDictionary > limits.dictionaryEntries) throw limitExceeded(file, "dictionaryEntries", shape.largestDictionary, limits);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** `meta`: the parsed `lakebed.trace` JSON, of any shape (arrow-metadata.ts checks the shape after this). */
export function checkArrowMetaLimits(meta: unknown, file: string, limits: ImportLimits): void {
  const walk = new BoundedWalk(file, limits);
  if (!isObject(meta) || !Array.isArray(meta.devices)) {
    walk.value(meta);
    return;
  }
  const devices = meta.devices;
  if (devices.length > limits.devices) throw limitExceeded(file, "devices", devices.length, limits);
  let finalSegments = 0;
  for (const d of devices) {
    if (!isObject(d)) continue; // the shape check says what is wrong with it
    const where = typeof d.device === "number" ? { device: d.device } : {};
    if (Array.isArray(d.streams) && d.streams.length > limits.streams) throw limitExceeded(file, "streams", d.streams.length, limits, where);
    for (const state of [d.initialState, d.finalState]) {
      if (!Array.isArray(state)) continue;
      // the final states of all devices are the snapshot's segments; a start state is rebuilt from them
      const segments = state === d.finalState ? (finalSegments += state.length) : state.length;
      if (segments > limits.segments) throw limitExceeded(file, "segments", segments, limits, where);
      for (const s of state) {
        if (isObject(s) && Array.isArray(s.blocks) && s.blocks.length > limits.blocksPerSegment) {
          throw limitExceeded(file, "blocksPerSegment", s.blocks.length, limits, where);
        }
      }
    }
  }
  for (const [key, value] of Object.entries(meta)) {
    walk.count(1);
    if (key !== "devices") walk.value(value, 1);
  }
  walk.count(devices.length);
  for (const d of devices) {
    if (!isObject(d)) {
      walk.value(d, 2);
      continue;
    }
    for (const [key, value] of Object.entries(d)) {
      walk.count(1);
      if (key !== "access") walk.value(value, 3);
    }
  }
}
