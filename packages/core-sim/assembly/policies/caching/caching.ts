// PyTorch's CUDA caching allocator (DeviceCachingAllocator, c10/cuda/CUDACachingAllocator.cpp,
// as of PyTorch 2.11), emulated exactly, with expandable_segments as a mode of the same allocator.
// Behaviour follows ../../../../../../shared/reference/pytorch-caching-allocator.md, part A; the numbers
// in brackets below name its sections. This file holds the allocation and free paths; the paths
// that give memory back are in release.ts, expandable segments in expandable.ts (their address
// ranges in expandable-segment.ts), the invariant walk in valid.ts, the snapshot layout in
// layout-writer.ts and its adoption at the start of a trace in layout-adopter.ts.
//
// Invariants (checked by brokenInvariant(), valid.ts; the number is what it returns):
//  INV-CACHE-1  the blocks of a segment tile it exactly: prev/next links are mutual, each block
//               starts where its prev ends, sizes are positive multiples of 512, and the chain of
//               a cudaMalloc'd segment spans exactly one range the device handed out.
//  INV-CACHE-2  blocks never overlap: segments are disjoint device ranges and every live block
//               record belongs to exactly one segment chain.
//  INV-CACHE-3  each pool's `blocks` set holds exactly its mapped blocks that are neither
//               allocated nor pending, `unmapped` exactly its unmapped blocks; both sets are
//               ordered and heap-shaped; no block is in a set of the other pool.
//  INV-CACHE-4  no two neighbours are both free (not allocated, not pending) with the same mapped
//               state: free_block and map/unmap always merge them.
//  INV-CACHE-5  a segment's blocks share its stream, pool and expandable segment; an unmapped
//               block starts and ends on page boundaries and no page inside it is mapped; every
//               page a mapped block touches is mapped.
//  INV-CACHE-6  every current stat equals its sum recomputed from the blocks, per pool and in
//               aggregate: allocation/allocated_bytes (allocated blocks), active/active_bytes
//               (allocated + pending), requested_bytes, segment (cudaMalloc'd segments),
//               reserved_bytes (cudaMalloc'd + mapped bytes), inactive_split(_bytes) (free blocks
//               of split non-expandable segments), oversize counters.
//  INV-CACHE-7  allocated_bytes <= active_bytes <= reserved_bytes; every peak >= its current;
//               total_allocated_memory == reserved_bytes.all.current; the pending count matches.

import { Device, NO_ADDRESS } from "../../device/device";
import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_MAPPED, FLAG_PENDING, newBlock, deleteBlock, bAddr, bSize,
  setAddr, setSize, bPrev, bNext, setPrev, setNext, bStream, bSegment, bRequested,
  setRequested, hasFlag, setFlag, isSplit, isExpandable, setTraceId as setBlockTraceId,
} from "../../memory/block-table";
import { AllocatorConfig, MiB, UNLIMITED } from "../config";
import { roundSize, allocationSize, isSmallSize, shouldSplitRemainder } from "../rounding";
import {
  Stats, STAT_ALLOCATION, STAT_SEGMENT, STAT_ACTIVE, STAT_INACTIVE_SPLIT, STAT_ALLOCATED_BYTES,
  STAT_RESERVED_BYTES, STAT_ACTIVE_BYTES, STAT_INACTIVE_SPLIT_BYTES, STAT_REQUESTED_BYTES,
  SCALAR_OVERSIZE_ALLOCATIONS, SCALAR_OVERSIZE_SEGMENTS, NUM_ALLOC_RETRIES, NUM_OOMS,
  NUM_DEVICE_ALLOC, MAX_SPLIT_SIZE,
} from "../stats";
import { BlockPool } from "./block-pool";
import { ExpandableSegment } from "./expandable-segment";
import { Policy } from "../policy";
import { splitFront, absorbNeighbour } from "../../memory/block-links";
import { SegmentLog, ACTION_SEGMENT_ALLOC } from "../../replay/segment-log";
import { Layout } from "../../replay/layout";
import {
  releaseCachedBlocks, releaseAvailableCachedBlocks, garbageCollectCachedBlocks,
  gcWouldRelease,
} from "./release";
import { tryAllocateExpandableBlock, expandableWouldFit } from "./expandable";
import { brokenCachingInvariant, brokenCachingLocalInvariant } from "./valid";
import { writeCachingLayout } from "./layout-writer";
import { adoptCachingSegment, adoptCachingBlock, adoptCachingDone } from "./layout-adopter";
import { BROKEN, BROKEN_CACHING_SPLIT_OFF_BY_ONE, BROKEN_CACHING_MERGE_NON_ADJACENT, BROKEN_CACHING_MISSED_STATS, BROKEN_CACHING_CROSS_STREAM } from "../broken";

/** The bytes an expandable segment reserves, as a multiple of device memory: 1 + 1/8. */
export function expandableAddressSpace(totalBytes: u64): u64 {
  return totalBytes + totalBytes / 8;
}

export class CachingAllocator extends Policy {
  conf: AllocatorConfig;
  small: BlockPool = new BlockPool(true);
  large: BlockPool = new BlockPool(false);
  /** bytes obtained from the device: cudaMalloc'd plus mapped (total_allocated_memory) */
  totalAllocatedBytes: u64 = 0;
  /** every expandable segment ever made, by id; null once released */
  segments: Array<ExpandableSegment | null> = new Array<ExpandableSegment | null>();

  constructor(device: Device, log: SegmentLog, conf: AllocatorConfig) {
    super(device, log);
    this.conf = conf;
    this.stats.set(MAX_SPLIT_SIZE, conf.maxSplitSizeBytes == UNLIMITED ? -1 : <i64>conf.maxSplitSizeBytes);
  }

  @inline pool(small: bool): BlockPool {
    return small ? this.small : this.large;
  }

  @inline poolOf(b: i32): BlockPool {
    return this.pool(hasFlag(b, 4 /* FLAG_SMALL */));
  }

  @inline gcActive(): bool {
    return this.setFraction && this.conf.garbageCollectionThreshold > 0;
  }

  segment(id: i32): ExpandableSegment {
    return changetype<ExpandableSegment>(this.segments[id]);
  }

  // ---- malloc [A7] ------------------------------------------------------------------------

  malloc(requestBytes: u64, stream: i32): i32 {
    // process_events is a no-op here: the replay applies free_completed where the trace has it.
    const size = roundSize(this.conf, requestBytes);
    const pool = this.pool(isSmallSize(size));
    const allocSize = allocationSize(this.conf, size);
    let block = this.getFreeBlock(pool, stream, size, true);
    // (free-memory callbacks, e.g. CUDA IPC, free nothing in an emulation)
    if (block == NO_BLOCK) {
      if (this.gcActive()) garbageCollectCachedBlocks(this);
      block = this.allocBlock(pool, stream, size, allocSize, false);
      if (block == NO_BLOCK && releaseAvailableCachedBlocks(this, pool, stream, size)) {
        block = this.allocBlock(pool, stream, size, allocSize, false);
      }
      if (block == NO_BLOCK && this.releaseAllCached()) {
        block = this.allocBlock(pool, stream, size, allocSize, true);
      }
    }
    if (block == NO_BLOCK) {
      this.stats.count(NUM_OOMS);
      return NO_BLOCK;
    }
    return this.allocFoundBlock(pool, block, size, requestBytes, this.shouldSplit(pool, block, size));
  }

  mallocWouldRelease(requestBytes: u64, stream: i32): bool {
    const size = roundSize(this.conf, requestBytes);
    const pool = this.pool(isSmallSize(size));
    const allocSize = allocationSize(this.conf, size);
    if (this.getFreeBlock(pool, stream, size, false) != NO_BLOCK) return false;
    if (this.gcActive() && gcWouldRelease(this)) return true;
    if (!this.withinFraction(this.totalAllocatedBytes, allocSize)) return true;
    if (this.conf.expandableSegments) return !expandableWouldFit(this, pool, stream, size);
    return !this.device.canAllocate(allocSize);
  }

  /**
   * get_free_block [A5]: best fit in the pool, then the expandable-segment and oversize rules.
   * With take, the block leaves the free set (and the GC clock advances); without, nothing changes.
   */
  getFreeBlock(pool: BlockPool, stream: i32, size: u64, take: bool): i32 {
    if (take && this.gcActive()) pool.gcClock++;
    let it = pool.lowerBoundFree(stream, size);
    if (it == NO_BLOCK || (bStream(it) != stream && BROKEN != BROKEN_CACHING_CROSS_STREAM)) return NO_BLOCK; // broken.ts
    if (isExpandable(it)) {
      if (this.conf.expandableSegments) {
        // Prefer a fitting block that is not the growable end of a segment: compare blocks by
        // the size they could grow to (their size plus an unmapped range right after them).
        let next = pool.nextFree(it);
        while (isExpandable(it) && next != NO_BLOCK && bStream(next) == stream &&
               expandableSize(next) < expandableSize(it)) {
          it = next;
          next = pool.nextFree(next);
        }
      } else {
        // expandable segments were turned off: only blocks of ordinary segments qualify
        do {
          it = pool.nextFree(it);
        } while (it != NO_BLOCK && isExpandable(it) && bStream(it) == stream);
        if (it == NO_BLOCK || bStream(it) != stream) return NO_BLOCK;
      }
    }
    const maxSplit = this.conf.maxSplitSizeBytes;
    // an oversize block is never given to a small request
    if (size < maxSplit && bSize(it) >= maxSplit) return NO_BLOCK;
    // an oversize request takes an oversize block only within the rounding tolerance
    if (size >= maxSplit && bSize(it) >= size + this.conf.maxNonSplitRoundingBytes) return NO_BLOCK;
    if (take) pool.eraseFree(it);
    return it;
  }

  /** should_split [A6]. */
  shouldSplit(pool: BlockPool, block: i32, size: u64): bool {
    return shouldSplitRemainder(this.conf, pool.small, bSize(block), size);
  }

  /** alloc_block [A8]: new device memory for the request; NO_BLOCK when the device refuses. */
  allocBlock(pool: BlockPool, stream: i32, size: u64, allocSize: u64, isRetry: bool): i32 {
    if (isRetry) this.stats.count(NUM_ALLOC_RETRIES);
    if (!this.withinFraction(this.totalAllocatedBytes, allocSize)) return NO_BLOCK;
    if (this.conf.expandableSegments) return tryAllocateExpandableBlock(this, pool, stream, size);
    const va = this.device.malloc(allocSize);
    if (va == NO_ADDRESS) return NO_BLOCK;
    this.totalAllocatedBytes += allocSize;
    const b = newBlock(va, allocSize, stream, pool.small, -1);
    this.stats.increase(STAT_SEGMENT, pool.small, 1);
    this.stats.increase(STAT_RESERVED_BYTES, pool.small, allocSize);
    if (allocSize >= this.conf.maxSplitSizeBytes) this.stats.increaseAt(SCALAR_OVERSIZE_SEGMENTS, 1);
    this.stats.count(NUM_DEVICE_ALLOC);
    this.log.record(ACTION_SEGMENT_ALLOC, va, allocSize);
    return b;
  }

  /** alloc_found_block [A6]: hands out the front of the block, caching the rest when splitting. */
  allocFoundBlock(pool: BlockPool, found: i32, size: u64, requestBytes: u64, split: bool): i32 {
    let block = found;
    const alreadySplit = isSplit(found);
    const small = pool.small;
    if (split) {
      // The remainder keeps the old record (and its stale requested size), as in PyTorch.
      const remaining = found;
      block = newBlock(bAddr(remaining), size, bStream(remaining), small, bSegment(remaining));
      splitFront(remaining, block, size);
      if (BROKEN == BROKEN_CACHING_SPLIT_OFF_BY_ONE) setAddr(remaining, bAddr(remaining) - 512); // broken.ts
      pool.insertFree(remaining);
      if (!isExpandable(block)) {
        if (alreadySplit) {
          // an already-split free block shrinks by `size`
          this.stats.decrease(STAT_INACTIVE_SPLIT_BYTES, small, size);
        } else {
          // a new split-off free block appears
          this.stats.increase(STAT_INACTIVE_SPLIT_BYTES, small, bSize(remaining));
          this.stats.increase(STAT_INACTIVE_SPLIT, small, 1);
        }
      }
    } else if (alreadySplit && !isExpandable(block)) {
      // an already-split free block becomes active whole
      this.stats.decrease(STAT_INACTIVE_SPLIT_BYTES, small, bSize(block));
      this.stats.decrease(STAT_INACTIVE_SPLIT, small, 1);
    }
    setFlag(block, FLAG_ALLOCATED, true);
    setRequested(block, requestBytes);
    this.countAllocation(block, small, requestBytes);
    return block;
  }

  /** The stats a block handed out moves (allocation, allocated, active, requested, oversize). */
  countAllocation(block: i32, small: bool, requestBytes: u64): void {
    const blockSize = bSize(block);
    this.stats.increase(STAT_ALLOCATION, small, 1);
    this.stats.increase(STAT_ALLOCATED_BYTES, small, blockSize);
    this.stats.increase(STAT_ACTIVE, small, 1);
    this.stats.increase(STAT_ACTIVE_BYTES, small, blockSize);
    this.stats.increase(STAT_REQUESTED_BYTES, small, requestBytes);
    if (blockSize >= this.conf.maxSplitSizeBytes) this.stats.increaseAt(SCALAR_OVERSIZE_ALLOCATIONS, 1);
  }

  // ---- free [A10, A11] ----------------------------------------------------------------------

  freeRequest(handle: i32): void {
    assert(hasFlag(handle, FLAG_ALLOCATED), "free of a block that is not allocated");
    const small = this.poolOf(handle).small;
    setFlag(handle, FLAG_ALLOCATED, false);
    this.stats.decrease(STAT_ALLOCATION, small, 1);
    if (!(BROKEN == BROKEN_CACHING_MISSED_STATS && !small)) this.stats.decrease(STAT_ALLOCATED_BYTES, small, bSize(handle)); // broken.ts
    if (bSize(handle) >= this.conf.maxSplitSizeBytes) this.stats.decreaseAt(SCALAR_OVERSIZE_ALLOCATIONS, 1);
    // Until its free completes the block is "active, pending free": not reusable, not mergeable.
    setFlag(handle, FLAG_PENDING, true);
    this.pendingBlocks++;
  }

  freeComplete(handle: i32): void {
    assert(hasFlag(handle, FLAG_PENDING), "free completion of a block that is not pending");
    setFlag(handle, FLAG_PENDING, false);
    this.pendingBlocks--;
    this.freeBlock(handle);
  }

  /** free_block: merge with free neighbours, cache, and account. */
  freeBlock(block: i32): void {
    const pool = this.poolOf(block);
    const small = pool.small;
    const originalSize = bSize(block);
    const requested = bRequested(block);
    setBlockTraceId(block, -1);
    let netBlocks: i64 = 0;
    let netBytes: i64 = 0;
    const before = bPrev(block);
    const after = BROKEN == BROKEN_CACHING_MERGE_NON_ADJACENT ? skipAllocated(bNext(block)) : bNext(block); // broken.ts
    let subsumed = this.tryMerge(block, before, pool);
    if (subsumed > 0) {
      netBlocks -= 1;
      netBytes -= <i64>subsumed;
    }
    subsumed = this.tryMerge(block, after, pool);
    if (subsumed > 0) {
      netBlocks -= 1;
      netBytes -= <i64>subsumed;
    }
    pool.insertFree(block);
    if (isSplit(block)) {
      netBlocks += 1;
      netBytes += <i64>bSize(block);
    }
    // inactive_split leaves expandable segments out: their free pages can always be unmapped
    if (!isExpandable(block)) {
      if (netBlocks > 0) this.stats.increase(STAT_INACTIVE_SPLIT, small, <u64>netBlocks);
      else if (netBlocks < 0) this.stats.decrease(STAT_INACTIVE_SPLIT, small, <u64>(-netBlocks));
      if (netBytes > 0) this.stats.increase(STAT_INACTIVE_SPLIT_BYTES, small, <u64>netBytes);
      else if (netBytes < 0) this.stats.decrease(STAT_INACTIVE_SPLIT_BYTES, small, <u64>(-netBytes));
    }
    this.stats.decrease(STAT_ACTIVE, small, 1);
    this.stats.decrease(STAT_ACTIVE_BYTES, small, originalSize);
    this.stats.decrease(STAT_REQUESTED_BYTES, small, requested);
  }

  /**
   * try_merge_blocks: absorbs neighbour src into dst (dst is in no free set) when src is free,
   * not pending, and mapped alike. Returns the bytes absorbed, 0 when not merged.
   */
  tryMerge(dst: i32, src: i32, pool: BlockPool): u64 {
    if (src == NO_BLOCK || hasFlag(src, FLAG_ALLOCATED) || hasFlag(src, FLAG_PENDING) ||
        hasFlag(dst, FLAG_MAPPED) != hasFlag(src, FLAG_MAPPED)) {
      return 0;
    }
    if (hasFlag(src, FLAG_MAPPED)) pool.eraseFree(src);
    else pool.eraseUnmapped(src);
    return absorbNeighbour(dst, src);
  }

  emptyCache(): void {
    releaseCachedBlocks(this);
  }

  /**
   * release_cached_blocks, the last resort before an out-of-memory error. A subclass that caches
   * memory in structures of its own (vms) gives that back too.
   */
  releaseAllCached(): bool {
    return releaseCachedBlocks(this);
  }

  // Hooks for a subclass whose large pool lives in structures of its own (vms.ts) while its small
  // pool stays this allocator's: the invariant walk (valid.ts) checks only the blocks
  // without FLAG_VMS for structure, and asks the subclass for what its own structures hold.
  /** device reservations the subclass holds */
  foreignReservations(): i32 {
    return 0;
  }
  /** adds the segments and reserved bytes of the subclass's structures (addRecomputed) */
  addForeignStats(): void {}

  // ---- the rest of the Policy interface ------------------------------------------------------

  brokenInvariant(): i32 {
    return brokenCachingInvariant(this);
  }

  brokenLocalInvariant(): i32 {
    return brokenCachingLocalInvariant(this);
  }

  writeLayout(out: Layout): void {
    writeCachingLayout(this, out);
  }

  adoptSegment(address: u64, stream: i32, small: bool, expandable: bool): void {
    adoptCachingSegment(this, address, stream, small, expandable);
  }

  adoptBlock(address: u64, size: u64, requested: u64, state: u8, traceId: i32): i32 {
    return adoptCachingBlock(this, address, size, requested, state, traceId);
  }

  adoptDone(): void {
    adoptCachingDone(this);
  }
}

/** How large a free block of an expandable segment could grow: its size plus the unmapped range after it. */
export function expandableSize(b: i32): u64 {
  const n = bNext(b);
  return bSize(b) + (n != NO_BLOCK && !hasFlag(n, FLAG_MAPPED) ? bSize(n) : 0);
}

/** BROKEN_CACHING_MERGE_NON_ADJACENT (broken.ts): the block after an allocated one */
function skipAllocated(b: i32): i32 {
  return b != NO_BLOCK && hasFlag(b, FLAG_ALLOCATED) ? bNext(b) : b;
}
