/**
 * The stated limits (import-limits.ts) on what a reader decoded, checked before anything is built on
 * it: the snapshot's own values (segments, allocator settings, annotations) are walked once as trees,
 * counting every value each time it is reached, so a memo reference that fans out costs what it
 * would cost to build, and the walk stops at the value past the limit; then the counts of segments,
 * blocks per segment, devices and streams per device.
 *
 * Why a walk and not the decoder's own count: the decoder shares a memoized value wherever it is
 * referenced (as pickle.load does), so a 300-byte pickle whose lists each refer to the previous one
 * twice decodes instantly into a value of 2^40 leaves; what is exponential is any later walk over it
 * (validating segments, printing a setting). This walk is that later work, bounded.
 *
 * Stack frames (`frames`) and block `history` are not walked: the importer reads nothing below them
 * but `history[0]`, and a pickle's frames are already skipped while decoding.
 */
import type { DecodedSnapshot } from "./assemble-trace.js";
import { isRecord } from "./decoded-values.js";
import { limitExceeded, type ImportLimits } from "./import-limits.js";

const NOT_WALKED = new Set(["frames", "history"]);

export function checkSnapshotBounds(decoded: DecodedSnapshot, limits: ImportLimits): void {
  const { file } = decoded;
  const walk = new BoundedWalk(file, limits);
  walk.value(decoded.allocatorSettings);
  walk.value(decoded.annotations);

  const segments = decoded.segments;
  const devices = new Set<number>();
  const streams = new Map<number, Set<unknown>>();
  for (const e of decoded.events) {
    if (e.length === 0) continue;
    devices.add(e.device);
    streams.set(e.device, new Set(e.rawStreams.map(streamKey)));
  }
  if (Array.isArray(segments)) {
    if (segments.length > limits.segments) throw limitExceeded(file, "segments", segments.length, limits);
    walk.count(1);
    for (const segment of segments) {
      walk.value(segment, 1);
      if (!isRecord(segment)) continue; // readSegments says what is wrong with it
      const blocks = segment.blocks;
      if (Array.isArray(blocks) && blocks.length > limits.blocksPerSegment) {
        throw limitExceeded(file, "blocksPerSegment", blocks.length, limits, deviceOf(segment));
      }
      const device = typeof segment.device === "number" ? segment.device : 0;
      devices.add(device);
      if (devices.size > limits.devices) throw limitExceeded(file, "devices", `${devices.size} or more`, limits);
      let seen = streams.get(device);
      if (seen === undefined) streams.set(device, (seen = new Set()));
      seen.add(streamKey(segment.stream ?? 0));
      if (seen.size > limits.streams) throw limitExceeded(file, "streams", `${seen.size} or more`, limits, { device });
    }
  } else {
    walk.value(segments);
  }
  if (devices.size > limits.devices) throw limitExceeded(file, "devices", devices.size, limits);
  for (const [device, seen] of streams) {
    if (seen.size > limits.streams) throw limitExceeded(file, "streams", seen.size, limits, { device });
  }
}

/** bigint and number stream ids of the same value are one stream */
function streamKey(raw: unknown): unknown {
  return typeof raw === "bigint" && raw >= BigInt(Number.MIN_SAFE_INTEGER) && raw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(raw) : raw;
}

function deviceOf(segment: Record<string, unknown>): { device?: number } {
  return typeof segment.device === "number" ? { device: segment.device } : {};
}

/** Walks decoded values depth-first with an explicit stack, counting values against limits.objects and nesting against limits.depth. */
export class BoundedWalk {
  private counted = 0;
  private readonly stack: unknown[] = [];
  private readonly depths: number[] = [];

  constructor(
    private readonly file: string,
    private readonly limits: ImportLimits,
  ) {}

  count(n: number): void {
    this.counted += n;
    if (this.counted > this.limits.objects) throw limitExceeded(this.file, "objects", `${this.counted} or more`, this.limits);
  }

  /** Counts `root` and everything below it; `depth` is the nesting of `root` itself. */
  value(root: unknown, depth = 0): void {
    const { stack, depths, limits } = this;
    this.count(1);
    stack.push(root);
    depths.push(depth);
    while (stack.length > 0) {
      const v = stack.pop();
      const d = depths.pop()!;
      if (typeof v !== "object" || v === null || v instanceof Uint8Array) continue;
      const isList = Array.isArray(v);
      if (!isList && !isPlainDict(v)) continue; // the decoder's sinks for skipped or streamed containers hold no decoded values
      if (d + 1 > limits.depth) throw limitExceeded(this.file, "depth", `${limits.depth + 1} or more`, limits);
      if (isList) {
        this.count(v.length); // before pushing them: the walk stops before its work outgrows the limit
        for (let i = v.length - 1; i >= 0; i--) {
          stack.push(v[i]);
          depths.push(d + 1);
        }
        continue;
      }
      for (const key in v) {
        this.count(1);
        if (NOT_WALKED.has(key)) continue;
        stack.push((v as Record<string, unknown>)[key]);
        depths.push(d + 1);
      }
    }
  }
}

function isPlainDict(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === null || proto === Object.prototype;
}
