import { snapshotJson } from "../support/cli.js";
import type { Op } from "../generators/program.js";

/**
 * Writes a program as a PyTorch snapshot (the dictionary of `torch.cuda.memory._snapshot()`, as JSON),
 * so that a shrunk failing program is a file `lakebed replay` runs like any recorded trace.
 *
 * The snapshot is complete (recording started on an empty allocator) and self-consistent: every
 * allocation gets a segment of its own (its size rounded up to 2 MiB, at a fresh address), as if
 * recorded with caching off; frees are `free_requested` + `free_completed`; empty_cache gives back
 * every segment whose block is free (`segment_free`); the final `segments` list what is left.
 * Addresses only matter to a replay that asks for the trace's own addresses: a policy replay makes
 * its own decisions from the sequence of requests.
 *
 * A memory limit cannot be written into a snapshot (PyTorch does not record it): `capacityForReplay`
 * gives the limit to pass as `--capacity`.
 */
const BASE_ADDRESS = 0x7f00_0000_0000;
const SEGMENT_ROUND_BYTES = 2 * 1024 * 1024;
const BLOCK_BYTES = 512;
const SMALL_LIMIT_BYTES = 1024 * 1024;
const START_TIME_US = 1_760_000_000_000_000;

/** raw cudaStream_t value for a stream index; ascending, 0 stays the default stream */
export function rawStream(stream: number): number {
  return stream === 0 ? 0 : 0x5a5a_0000 + stream * 0x100;
}

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

interface SegmentRecord {
  address: number;
  segmentBytes: number;
  blockBytes: number;
  requestedBytes: number;
  stream: number;
  allocated: boolean;
}

export function programToSnapshotJson(ops: readonly Op[]): string {
  const entries: Record<string, unknown>[] = [];
  const segments = new Map<number, SegmentRecord>(); // by program id, in allocation order
  let next = BASE_ADDRESS;
  const entry = (action: string, addr: number, size: number, stream: number) =>
    entries.push({ action, addr, size, stream: rawStream(stream), time_us: START_TIME_US + entries.length, frames: [] });

  for (const o of ops) {
    if (o.op === "alloc") {
      const blockBytes = roundUp(Math.max(1, o.bytes), BLOCK_BYTES);
      const segmentBytes = roundUp(blockBytes, SEGMENT_ROUND_BYTES);
      const address = next;
      next += segmentBytes;
      segments.set(o.id, { address, segmentBytes, blockBytes, requestedBytes: o.bytes, stream: o.stream, allocated: true });
      entry("segment_alloc", address, segmentBytes, o.stream);
      entry("alloc", address, o.bytes, o.stream);
    } else if (o.op === "free") {
      const s = segments.get(o.id);
      if (!s || !s.allocated) continue;
      s.allocated = false;
      entry("free_requested", s.address, s.requestedBytes, s.stream);
      entry("free_completed", s.address, s.requestedBytes, s.stream);
    } else if (o.op === "emptyCache") {
      for (const [id, s] of segments) {
        if (s.allocated) continue;
        entry("segment_free", s.address, s.segmentBytes, s.stream);
        segments.delete(id);
      }
    }
  }

  const finalSegments = [...segments.values()].map((s) => {
    const blocks = [{ address: s.address, size: s.blockBytes, requested_size: s.requestedBytes, state: s.allocated ? "active_allocated" : "inactive", frames: [] }];
    if (s.segmentBytes > s.blockBytes) {
      blocks.push({ address: s.address + s.blockBytes, size: s.segmentBytes - s.blockBytes, requested_size: 0, state: "inactive", frames: [] });
    }
    return {
      device: 0,
      address: s.address,
      total_size: s.segmentBytes,
      allocated_size: s.allocated ? s.blockBytes : 0,
      active_size: s.allocated ? s.blockBytes : 0,
      requested_size: s.allocated ? s.requestedBytes : 0,
      stream: rawStream(s.stream),
      segment_type: s.blockBytes <= SMALL_LIMIT_BYTES ? "small" : "large",
      segment_pool_id: [0, 0],
      is_expandable: false,
      frames: [],
      blocks,
    };
  });
  return snapshotJson(entries, finalSegments);
}

/** the limit to replay under: the first one the program sets (null: none) */
export function capacityForReplay(ops: readonly Op[]): number | null {
  for (const o of ops) if (o.op === "setCapacity") return o.bytes;
  return null;
}
