/**
 * The snapshot's `segments` list (reference B4) -> segments by device, checked against
 * INV-TRACE-5 (blocks in address order tile the segment exactly).
 *
 * Legacy PyTorch 2.0 files have blocks without `address` (only `history: [{addr, real_size}]`): their
 * addresses are prefix sums over the segment, as PyTorch's viewer computes them; `legacy` says so.
 */
import type { BlockStateKind } from "./model.js";
import { TraceError } from "./trace-error.js";
import type { RawStream } from "./column-builder.js";
import { describe, isRecord } from "./decoded-values.js";

/** A segment as read: like SegmentState but with its raw stream, before stream renumbering. */
export interface RawSegment {
  device: number;
  address: number;
  totalSize: number;
  rawStream: RawStream;
  pool: "small" | "large";
  expandable: boolean;
  /** `segment_pool_id` when it names a private pool; null for the default pools (0, 0) or none recorded */
  poolId: [number, number] | null;
  blocks: RawBlock[];
}

export interface RawBlock {
  address: number;
  size: number;
  requestedSize: number;
  state: BlockStateKind;
}

export interface ReadSegments {
  segments: RawSegment[];
  /** true when blocks carried no addresses (PyTorch 2.0 layout) */
  legacy: boolean;
}

const STATE_BY_NAME: ReadonlyMap<string, BlockStateKind> = new Map([
  ["active_allocated", "allocated"],
  ["active_pending_free", "pending_free"],
  ["active_awaiting_free", "pending_free"],
  ["inactive", "inactive"],
]);

export function readSegments(value: unknown, file: string): ReadSegments {
  if (value === undefined || value === null) return { segments: [], legacy: false };
  if (!Array.isArray(value)) throw new TraceError(file, `malformed snapshot: segments is ${describe(value)}, expected a list`);
  let legacy = false;
  const segments = value.map((seg, i): RawSegment => {
    const where = `segments[${i}]`;
    if (!isRecord(seg)) throw new TraceError(file, `malformed snapshot: ${where} is ${describe(seg)}, expected a dict`);
    const address = byteCount(seg.address, `${where}.address`, file);
    const totalSize = byteCount(seg.total_size, `${where}.total_size`, file);
    const device = seg.device === undefined ? 0 : byteCount(seg.device, `${where}.device`, file);
    const rawStream = seg.stream === undefined || seg.stream === null ? 0 : seg.stream;
    if (typeof rawStream !== "bigint" && !(typeof rawStream === "number" && Number.isInteger(rawStream))) {
      throw new TraceError(file, `malformed snapshot: ${where}.stream is ${describe(rawStream)}, expected an integer`);
    }
    const pool = seg.segment_type === "small" ? "small" : seg.segment_type === "large" ? "large" : totalSize === 2 * 1024 * 1024 ? "small" : "large";
    const rawBlocks = seg.blocks;
    if (!Array.isArray(rawBlocks)) throw new TraceError(file, `malformed snapshot: ${where}.blocks is ${describe(rawBlocks)}, expected a list`);
    let next = address;
    const blocks = rawBlocks.map((b, j): RawBlock => {
      const bw = `${where}.blocks[${j}]`;
      if (!isRecord(b)) throw new TraceError(file, `malformed snapshot: ${bw} is ${describe(b)}, expected a dict`);
      const size = byteCount(b.size, `${bw}.size`, file);
      let blockAddress: number;
      if (b.address === undefined) {
        legacy = true;
        blockAddress = next;
      } else {
        blockAddress = byteCount(b.address, `${bw}.address`, file);
      }
      if (blockAddress !== next) {
        throw new TraceError(file, `malformed snapshot: ${bw} starts at 0x${blockAddress.toString(16)}, expected 0x${next.toString(16)} (blocks must tile their segment)`);
      }
      next = blockAddress + size;
      const state = typeof b.state === "string" ? STATE_BY_NAME.get(b.state) : undefined;
      if (state === undefined) throw new TraceError(file, `malformed snapshot: ${bw}.state is ${describe(b.state)}`);
      let requested = b.requested_size;
      if (requested === undefined && Array.isArray(b.history) && isRecord(b.history[0])) requested = b.history[0].real_size;
      const requestedSize = requested === undefined ? size : byteCount(requested, `${bw}.requested_size`, file);
      return { address: blockAddress, size, requestedSize, state };
    });
    if (next !== address + totalSize) {
      throw new TraceError(file, `malformed snapshot: ${where}: blocks cover ${next - address} bytes, total_size is ${totalSize}`);
    }
    const poolId = readPoolId(seg.segment_pool_id, `${where}.segment_pool_id`, file);
    return { device, address, totalSize, rawStream, pool, expandable: seg.is_expandable === true, poolId, blocks };
  });
  return { segments, legacy };
}

/** PyTorch writes a MempoolId_t as a pair of integers (a tuple in the pickle, a list in JSON). */
function readPoolId(value: unknown, what: string, file: string): [number, number] | null {
  if (value === undefined || value === null) return null;
  const ids = Array.isArray(value) && value.length === 2 ? value.map((v) => (typeof v === "bigint" ? Number(v) : v)) : null;
  if (ids === null || !ids.every((v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0)) {
    throw new TraceError(file, `malformed snapshot: ${what} is ${describe(value)}, expected a pair of pool ids`);
  }
  const [a, b] = ids as number[];
  return a === 0 && b === 0 ? null : [a, b];
}

function byteCount(value: unknown, what: string, file: string): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  throw new TraceError(file, `malformed snapshot: ${what} is ${describe(value)}, expected a byte count`);
}
