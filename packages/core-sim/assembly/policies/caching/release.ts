// How the caching allocator gives memory back to the device [A9]: release_block (cudaFree of a
// whole cached segment), release_blocks and release_cached_blocks (empty_cache and the last step
// of the out-of-memory path), release_available_cached_blocks (with max_split_size) and
// garbage_collect_cached_blocks (with a memory fraction and garbage_collection_threshold).

import {
  NO_BLOCK, bAddr, bSize, bStream, bGcBase, isSplit, isExpandable, deleteBlock,
} from "../../memory/block-table";
import { STAT_SEGMENT, STAT_RESERVED_BYTES, SCALAR_OVERSIZE_SEGMENTS, NUM_DEVICE_FREE } from "../stats";
import { UNLIMITED } from "../config";
import { BlockPool } from "./block-pool";
import { CachingAllocator } from "./caching";
import { unmapBlock, releaseExpandableSegment } from "./expandable";
import { ACTION_SEGMENT_FREE } from "../../replay/segment-log";
import { BROKEN, BROKEN_CACHING_RELEASE_KEEPS_RESERVED } from "../broken";

/** release_block: cudaFree of a cached, unsplit, ordinary segment. */
export function releaseBlock(a: CachingAllocator, b: i32): void {
  assert(!isExpandable(b) && !isSplit(b), "release_block of a split or expandable block");
  const pool = a.poolOf(b);
  const size = bSize(b);
  a.stats.count(NUM_DEVICE_FREE);
  a.log.record(ACTION_SEGMENT_FREE, bAddr(b), size);
  a.device.free(bAddr(b));
  a.totalAllocatedBytes -= size;
  a.stats.decrease(STAT_SEGMENT, pool.small, 1);
  if (BROKEN != BROKEN_CACHING_RELEASE_KEEPS_RESERVED) a.stats.decrease(STAT_RESERVED_BYTES, pool.small, size); // broken.ts
  if (size >= a.conf.maxSplitSizeBytes) a.stats.decreaseAt(SCALAR_OVERSIZE_SEGMENTS, 1);
  pool.eraseFree(b);
  deleteBlock(b);
}

/**
 * release_blocks: frees every unsplit cached segment of the pool (in free-set order), then unmaps
 * the whole pages of every cached expandable block, dropping reservations left with nothing mapped.
 */
export function releaseBlocks(a: CachingAllocator, pool: BlockPool): void {
  const toUnmap = new Array<i32>();
  let it = pool.firstFree();
  while (it != NO_BLOCK) {
    const b = it;
    it = pool.nextFree(b);
    if (isExpandable(b)) toUnmap.push(b);
    else if (!isSplit(b)) releaseBlock(a, b);
  }
  for (let i = 0; i < toUnmap.length; i++) {
    const b = toUnmap[i];
    unmapBlock(a, pool, b);
    if (!isSplit(b)) releaseExpandableSegment(a, pool, b);
  }
}

/**
 * synchronize_and_free_events: waits on every outstanding stream event, completing every pending
 * free. In a trace replay the trace's own free_completed events come first, so this finds nothing
 * to complete unless the replay diverged from the trace; the blocks it completes are reported to
 * the replay (Policy.selfCompleted).
 */
export function synchronizeAndFreeEvents(a: CachingAllocator): void {
  a.completePendingFrees();
}

/** release_cached_blocks: empty_cache, and the last resort before an out-of-memory error. */
export function releaseCachedBlocks(a: CachingAllocator): bool {
  synchronizeAndFreeEvents(a);
  releaseBlocks(a, a.large);
  releaseBlocks(a, a.small);
  return true;
}

/**
 * release_available_cached_blocks (only with max_split_size): frees one cached oversize segment
 * large enough for the request, else the largest oversize ones of the stream, down, until enough.
 * Expandable blocks are skipped (PyTorch 2.5+).
 */
export function releaseAvailableCachedBlocks(a: CachingAllocator, pool: BlockPool, stream: i32, size: u64): bool {
  const maxSplit = a.conf.maxSplitSizeBytes;
  if (maxSplit == UNLIMITED) return false;
  const target = size < maxSplit ? maxSplit : size;
  let it = pool.lowerBoundFree(stream, target);
  if (it == NO_BLOCK || bStream(it) != stream || isExpandable(it)) {
    // no single block is large enough: free oversize blocks, starting with the largest
    it = it == NO_BLOCK ? pool.lastFree() : pool.prevFree(it);
    if (it == NO_BLOCK) return false;
    let released: u64 = 0;
    while (released < target && bSize(it) >= maxSplit && bStream(it) == stream) {
      const cur = it;
      const below = pool.prevFree(cur);
      if (!isExpandable(cur)) {
        released += bSize(cur);
        releaseBlock(a, cur);
      }
      if (below == NO_BLOCK) break;
      it = below;
    }
    return released >= target;
  }
  releaseBlock(a, it);
  return true;
}

/** The byte level above which garbage collection reclaims cached segments. */
function gcThresholdBytes(a: CachingAllocator): u64 {
  return <u64>(a.conf.garbageCollectionThreshold * <f64>a.allowedMaxBytes);
}

/** Ticks of the pool's GC clock since the block was cached (Block::gc_count). */
@inline function gcAge(pool: BlockPool, b: i32): i64 {
  return <i64>(<i32>(pool.gcClock - bGcBase(b)));
}

@inline function gcCandidate(b: i32): bool {
  return !isSplit(b) && !isExpandable(b);
}

/**
 * garbage_collect_cached_blocks: when more than threshold x allowed memory is obtained from the
 * device, frees unsplit cached large segments whose age is at least the mean age, in rounds,
 * until the excess is reclaimed or a round frees nothing. No synchronization.
 */
export function garbageCollectCachedBlocks(a: CachingAllocator): void {
  const threshold = gcThresholdBytes(a);
  if (a.totalAllocatedBytes <= threshold) return;
  const target = a.totalAllocatedBytes - threshold;
  const pool = a.large;
  let reclaimed: u64 = 0;
  let totalAge: i64 = 0;
  let candidates: i32 = 0;
  // (the mean age counts every unsplit cached block, as PyTorch does, though only ordinary
  // segments are freed; an unsplit expandable block would span a whole reservation)
  for (let b = pool.firstFree(); b != NO_BLOCK; b = pool.nextFree(b)) {
    if (!isSplit(b)) {
      totalAge += gcAge(pool, b);
      candidates++;
    }
  }
  if (candidates == 0) return;
  let freedAny = true;
  while (reclaimed < target && freedAny && candidates > 0) {
    const ageThreshold = <f64>totalAge / <f64>candidates;
    freedAny = false;
    let it = pool.firstFree();
    while (it != NO_BLOCK) {
      const b = it;
      it = pool.nextFree(b);
      if (gcCandidate(b) && <f64>gcAge(pool, b) >= ageThreshold) {
        freedAny = true;
        reclaimed += bSize(b);
        totalAge -= gcAge(pool, b);
        candidates--;
        releaseBlock(a, b);
      }
    }
  }
}

/** Would garbage_collect_cached_blocks free something now? */
export function gcWouldRelease(a: CachingAllocator): bool {
  if (a.totalAllocatedBytes <= gcThresholdBytes(a)) return false;
  for (let b = a.large.firstFree(); b != NO_BLOCK; b = a.large.nextFree(b)) {
    if (gcCandidate(b)) return true;
  }
  return false;
}
