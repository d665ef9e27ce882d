import { gzipSync } from "node:zlib";
import type { ImportLimits } from "@lakebed/traces";
import { toJsonText } from "./mutate-values.js";
import { writePickle } from "./pickle-writer.js";
import type { Rng } from "../support/random.js";

/**
 * Valid snapshots (or nearly) shaped to hit the importer's stated limits (import-limits.ts): memo
 * fan-out, nesting depth, decompression ratio, and counts of devices, streams, segments and blocks
 * per segment, each drawn on both sides of its limit. Where the default limit is too large for a
 * fuzz input to reach cheaply (20 million values, a million segments, 4 GiB decompressed), the input
 * carries lowered limits that the isolated importer passes to readTrace; the importer must then
 * accept the input or refuse it with its one line, within the fuzzer's time and heap limits, as for
 * any other input. The recipe starts with the class name, which the campaign summary counts.
 */
export interface HostileShape {
  value: unknown;
  recipe: string;
  limits?: Partial<ImportLimits>;
  /** gzip the encoded bytes, with this many padding bytes after the snapshot (the decompression-ratio class) */
  gzipPadding?: number;
}

export const HOSTILE_CLASSES = ["fan-out", "depth", "gzip-ratio", "devices", "streams", "segments"] as const;

const MiB = 1024 * 1024;

/** One shape of a class drawn by `rng`; fan-out needs the pickle memo, so JSON draws among the others. */
export function hostileShape(rng: Rng, pickle: boolean): HostileShape {
  const classes = pickle ? HOSTILE_CLASSES : HOSTILE_CLASSES.filter((c) => c !== "fan-out");
  switch (rng.pick(classes)) {
    case "fan-out":
      return fanOut(rng);
    case "depth":
      return depth(rng);
    case "gzip-ratio":
      return gzipRatio(rng);
    case "devices":
      return devices(rng);
    case "streams":
      return streams(rng);
    case "segments":
      return segments(rng);
  }
}

/** The bytes of a shape: pickled (protocol 2 to 5) or JSON, then gzipped with padding for gzip-ratio. */
export function encodeShape(shape: HostileShape, pickle: boolean, protocol: 2 | 3 | 4 | 5): Uint8Array {
  const bytes = pickle ? writePickle(shape.value, protocol) : new TextEncoder().encode(toJsonText(shape.value));
  if (shape.gzipPadding === undefined) return bytes;
  // bytes after a pickle's STOP are ignored (the viewer pads pickles), and JSON allows trailing
  // whitespace: the padding is zeros after a pickle and spaces after JSON, so both stay valid
  const padded = new Uint8Array(bytes.length + shape.gzipPadding).fill(pickle ? 0 : 0x20);
  padded.set(bytes);
  return gzipSync(padded, { level: 1 });
}

/** A complete run on one stream: a segment, an allocation in it, and their frees. */
function entries(stream: number, at: number): Record<string, unknown>[] {
  const addr = (at + 1) * 2 * MiB;
  return ["segment_alloc", "alloc", "free_requested", "free_completed", "segment_free"].map((action, i) => ({
    action,
    addr,
    size: action.startsWith("segment") ? 2 * MiB : 512,
    stream,
    time_us: at * 5 + i,
    frames: [],
  }));
}

/** Lists that each hold `refs` references to the previous one, `levels` deep: refs^levels values when walked. */
function fanOut(rng: Rng): HostileShape {
  const levels = rng.range(1, 48);
  const refs = rng.range(1, 4);
  let x: unknown[] = [];
  for (let k = 0; k < levels; k++) x = Array.from({ length: refs }, () => x);
  const where = rng.pick(["segments", "allocator_settings", "external_annotations"] as const);
  const value: Record<string, unknown> = { segments: [], device_traces: [entries(0, 0)] };
  value[where] = where === "allocator_settings" ? { nested: x } : x;
  const objects = rng.pick([1_000, 100_000, 1_000_000]);
  return { value, recipe: `fan-out(${refs}^${levels} in ${where}, objects ${objects})`, limits: { objects } };
}

/**
 * Lists or dicts nested up to 1,200 deep, against the default depth (1,000) or a lowered one (the
 * fuzzers' pickle writer recurses, so deeper inputs come from the opcode generator in garbage.ts).
 */
function depth(rng: Rng): HostileShape {
  const levels = rng.range(1, rng.chance(0.5) ? 1_200 : 60);
  const dicts = rng.chance(0.5);
  let x: unknown = 1;
  for (let k = 0; k < levels; k++) x = dicts ? { k: x } : [x];
  const limit = rng.chance(0.5) ? undefined : rng.range(5, 60);
  const value = { segments: [], device_traces: [entries(0, 0)], allocator_settings: { nested: x } };
  return { value, recipe: `depth(${levels} ${dicts ? "dicts" : "lists"}, limit ${limit ?? "default"})`, limits: limit === undefined ? undefined : { depth: limit } };
}

/** A small snapshot padded with up to 16 MiB of zeros (spaces for JSON) inside the gzip stream (about 1000:1), against a lowered limit. */
function gzipRatio(rng: Rng): HostileShape {
  const padding = rng.skewed(16 * MiB);
  const limit = rng.pick([64 * 1024, MiB, 4 * MiB, 32 * MiB]);
  return {
    value: { segments: [], device_traces: [entries(0, 0)] },
    recipe: `gzip-ratio(${padding} zeros, limit ${limit})`,
    limits: { decompressedBytes: limit },
    gzipPadding: padding,
  };
}

/** Up to 1,100 device lists (the default limit is 1,024), or fewer against a lowered limit. */
function devices(rng: Rng): HostileShape {
  const n = rng.chance(0.15) ? rng.range(1_000, 1_100) : rng.range(1, 40);
  const limit = n >= 1_000 ? undefined : rng.range(1, 40);
  const value = { segments: [], device_traces: Array.from({ length: n }, (_, d) => (d % 7 === 0 ? entries(0, d) : [])) };
  return { value, recipe: `devices(${n}, limit ${limit ?? "default"})`, limits: limit === undefined ? undefined : { devices: limit } };
}

/** Up to 300 streams on one device (the default limit is 256), or fewer against a lowered limit. */
function streams(rng: Rng): HostileShape {
  const n = rng.chance(0.3) ? rng.range(240, 300) : rng.range(1, 40);
  const limit = n >= 240 ? undefined : rng.range(1, 40);
  const list: Record<string, unknown>[] = [];
  for (let s = 0; s < n; s++) list.push(...entries(1000 + s * 16, s));
  return { value: { segments: [], device_traces: [list] }, recipe: `streams(${n}, limit ${limit ?? "default"})`, limits: limit === undefined ? undefined : { streams: limit } };
}

/**
 * Segments whose block lists are one shared list (as a pickle writes a repeated reference: the
 * tiling check then fails on all but the first) or their own, against lowered limits on segments,
 * blocks per segment and values.
 */
function segments(rng: Rng): HostileShape {
  const count = rng.range(1, 60);
  const blocks = rng.range(1, 60);
  const shared = rng.chance(0.5);
  const blockList = (address: number) =>
    Array.from({ length: blocks }, (_, j) => ({ address: address + j * 512, size: 512, requested_size: 512, state: "active_allocated", frames: [] }));
  const first = blockList(64 * MiB);
  const value = {
    device_traces: [],
    segments: Array.from({ length: count }, (_, i) => {
      const address = (i + 1) * 64 * MiB;
      return { device: 0, address, total_size: blocks * 512, stream: 0, segment_type: "large", blocks: shared ? first : blockList(address) };
    }),
  };
  const limits = { segments: rng.range(1, 60), blocksPerSegment: rng.range(1, 60), objects: rng.pick([1_000, 100_000]) };
  return {
    value,
    recipe: `segments(${count} x ${blocks} blocks${shared ? " shared" : ""}, limits ${limits.segments}/${limits.blocksPerSegment}/${limits.objects})`,
    limits,
  };
}
