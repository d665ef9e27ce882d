/**
 * PyTorch's request rounding (reference A3) and split rule (A6), as far as the importer needs them:
 * to re-carve a freed block when rebuilding the state at the start of a trace (initial-state.ts).
 * The simulator has its own exact emulation in core-sim; this is not a second policy, only the size
 * a block must have had.
 */
import type { AllocatorSettings } from "./model.js";

const MIN_BLOCK_BYTES = 512;
const SMALL_SIZE_BYTES = 1024 * 1024;
const MIB_LOG2 = 20;
const ROUNDUP_BUCKETS = 16;

/**
 * The roundup divisions that matter for `settings`: null when no bucket has divisions > 1 (the
 * default), so that rounding is plain 512-byte rounding without a bucket lookup.
 */
export function power2Divisions(settings: AllocatorSettings | null): readonly number[] | null {
  return settings !== null && settings.roundupPower2Divisions.some((d) => d > 1) ? settings.roundupPower2Divisions : null;
}

/** `round_size`: the block size PyTorch carves for a request; `divisions` from power2Divisions. */
export function roundRequest(requestBytes: number, divisions: readonly number[] | null): number {
  if (requestBytes < MIN_BLOCK_BYTES) return MIN_BLOCK_BYTES;
  const d = divisions === null ? 0 : divisions[bucketOf(requestBytes)] ?? 0;
  if (d > 1 && requestBytes > MIN_BLOCK_BYTES * d) {
    const floorPow2 = 2 ** Math.floor(Math.log2(requestBytes));
    if (floorPow2 === requestBytes) return requestBytes;
    const step = floorPow2 / d;
    if (step === 0) return floorPow2 * 2;
    return Math.ceil(requestBytes / step) * step;
  }
  return Math.ceil(requestBytes / MIN_BLOCK_BYTES) * MIN_BLOCK_BYTES;
}

/** `should_split`: whether a free block of rounded+remainder bytes is split for a rounded request. */
export function wouldSplit(
  roundedBytes: number,
  remainderBytes: number,
  segment: { pool: "small" | "large"; expandable: boolean },
  settings: AllocatorSettings | null,
): boolean {
  if (segment.pool === "small" || segment.expandable) return remainderBytes >= MIN_BLOCK_BYTES;
  const maxSplit = settings === null || settings.maxSplitSize < 0 ? Infinity : settings.maxSplitSize;
  return roundedBytes < maxSplit && remainderBytes > SMALL_SIZE_BYTES;
}

function bucketOf(bytes: number): number {
  const bucket = Math.floor(Math.log2(bytes)) - MIB_LOG2;
  return Math.min(Math.max(bucket, 0), ROUNDUP_BUCKETS - 1);
}
