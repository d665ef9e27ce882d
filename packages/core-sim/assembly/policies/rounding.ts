// Request rounding and segment sizing of PyTorch's caching allocator (reference A2-A4, A6):
// round_size, the pool a rounded size goes to, get_allocation_size (the size of a new segment) and
// should_split (whether a free block serving a request keeps its remainder as a block of its own).

import { AllocatorConfig, MiB, ROUNDUP_BUCKETS } from "./config";

/** every block size is a multiple of this; the smallest request (kMinBlockSize) */
export const MIN_BLOCK_BYTES: u64 = 512;
/** rounded sizes up to this go to the small pool (kSmallSize) */
export const SMALL_SIZE_BYTES: u64 = 1 * MiB;
/** the segment size for small requests and the small expandable page (kSmallBuffer) */
export const SMALL_BUFFER_BYTES: u64 = 2 * MiB;
/** requests from this size up get a segment of their own size (kMinLargeAlloc) */
export const MIN_LARGE_ALLOC_BYTES: u64 = 10 * MiB;
/** large segments are rounded up to this (kRoundLarge) */
export const ROUND_LARGE_BYTES: u64 = 2 * MiB;

/** log2 of the first bucket's start, 1 MiB */
const FIRST_BUCKET_LOG2: i32 = 20;

/** The roundup_power2_divisions entry for a size: bucket floor(log2(size)) - 20, in [0, 15]. */
export function divisionsFor(conf: AllocatorConfig, size: u64): u32 {
  const log2 = 63 - <i32>clz(size);
  let bucket = log2 > FIRST_BUCKET_LOG2 ? log2 - FIRST_BUCKET_LOG2 : 0;
  if (bucket > ROUNDUP_BUCKETS - 1) bucket = ROUNDUP_BUCKETS - 1;
  return unchecked(conf.roundupDivisions[bucket]);
}

/** Rounds up to the next of `divisions` equal steps between two powers of two. */
export function roundupPower2NextDivision(size: u64, divisions: u32): u64 {
  if (popcnt(size) == 1) return size;
  const power2Floor: u64 = (<u64>1) << (63 - clz(size));
  const step = power2Floor >> <u64>(31 - clz(divisions)); // divisions rounded down to a power of two
  if (step == 0) return power2Floor << 1;
  const floor = size & ~(step - 1);
  return floor == size ? size : floor + step;
}

/** PyTorch's round_size: what a request of `size` bytes really takes. */
export function roundSize(conf: AllocatorConfig, size: u64): u64 {
  if (size < MIN_BLOCK_BYTES) return MIN_BLOCK_BYTES;
  const divisions = divisionsFor(conf, size);
  if (divisions > 1 && size > MIN_BLOCK_BYTES * divisions) return roundupPower2NextDivision(size, divisions);
  return MIN_BLOCK_BYTES * ((size + MIN_BLOCK_BYTES - 1) / MIN_BLOCK_BYTES);
}

/** A rounded size goes to the small pool up to and including 1 MiB. */
@inline export function isSmallSize(rounded: u64): bool {
  return rounded <= SMALL_SIZE_BYTES;
}

/** PyTorch's get_allocation_size: the size of a new segment for a rounded request. */
export function allocationSize(conf: AllocatorConfig, rounded: u64): u64 {
  if (rounded <= SMALL_SIZE_BYTES) return SMALL_BUFFER_BYTES;
  if (rounded < MIN_LARGE_ALLOC_BYTES) return conf.largeSegmentBytes;
  return ROUND_LARGE_BYTES * ((rounded + ROUND_LARGE_BYTES - 1) / ROUND_LARGE_BYTES);
}

/**
 * PyTorch's should_split: a block of blockBytes serving a rounded request of `size` splits off
 * its remainder when, in the small pool or with expandable segments, at least 512 bytes remain;
 * in the large pool, when the request is below max_split_size and more than 1 MiB remains.
 */
export function shouldSplitRemainder(conf: AllocatorConfig, small: bool, blockBytes: u64, size: u64): bool {
  const remaining = blockBytes - size;
  if (small || conf.expandableSegments) return remaining >= MIN_BLOCK_BYTES;
  return size < conf.maxSplitSizeBytes && remaining > SMALL_SIZE_BYTES;
}
