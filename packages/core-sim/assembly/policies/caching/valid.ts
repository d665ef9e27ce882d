// The caching allocator's isValid, at two levels: the whole walk over every live block record,
// recomputing what the allocator keeps incrementally, and checking it against the numbered
// invariants listed at the top of caching.ts, O(blocks); and the local check of what the last
// events changed (below). Each returns the number of the first broken invariant, 0 when all hold.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_MAPPED, FLAG_PENDING, FLAG_SMALL, FLAG_IN_TREE, FLAG_VMS, bAddr, bSize,
  bRequested, bPrev, bNext, bLeft, bRight, bStream, bSegment, bEnd, hasFlag, isSplit, isExpandable,
  blockIdBound, isLive,
} from "../../memory/block-table";
import { BY_SIZE, BY_ADDRESS, setWellFormed } from "../../memory/free-set";
import {
  STAT_ALLOCATION, STAT_SEGMENT, STAT_ACTIVE, STAT_INACTIVE_SPLIT, STAT_ALLOCATED_BYTES,
  STAT_RESERVED_BYTES, STAT_ACTIVE_BYTES, STAT_INACTIVE_SPLIT_BYTES, STAT_REQUESTED_BYTES,
  ARRAY_STAT_KINDS, POOL_ALL, POOL_SMALL, POOL_LARGE, SCALAR_OVERSIZE_ALLOCATIONS,
  SCALAR_OVERSIZE_SEGMENTS, METRIC_CURRENT, METRIC_PEAK, statIndex,
} from "../stats";
import { MIN_BLOCK_BYTES } from "../rounding";
import { CachingAllocator } from "./caching";
import { SimulatedDevice } from "../../device/simulated";
import { distinctChanges, changedBlock } from "../../memory/changed-blocks";

const INV_TILING: i32 = 1;
const INV_DISJOINT: i32 = 2;
const INV_FREE_SETS: i32 = 3;
const INV_MERGED: i32 = 4;
const INV_SEGMENT_SHAPE: i32 = 5;
const INV_STATS: i32 = 6;
const INV_BOUNDS: i32 = 7;

// Recomputed current values: [kind * 3 + pool].
const recomputed = new StaticArray<i64>(ARRAY_STAT_KINDS * 3);

/** Adds to the recomputed current value of a stat (also for a subclass's own structures). */
export function addRecomputed(kind: i32, small: bool, amount: i64): void {
  add(kind, small, amount);
}

@inline function add(kind: i32, small: bool, amount: i64): void {
  unchecked((recomputed[kind * 3 + POOL_ALL] += amount));
  const p = kind * 3 + (small ? POOL_SMALL : POOL_LARGE);
  unchecked((recomputed[p] += amount));
}

/** Members of a free-set subtree, or -1 when one does not belong there. */
function countMembers(t: i32, small: bool, mapped: bool): i32 {
  if (t == NO_BLOCK) return 0;
  if (!isLive(t) || hasFlag(t, FLAG_SMALL) != small || hasFlag(t, FLAG_MAPPED) != mapped ||
      hasFlag(t, FLAG_ALLOCATED) || hasFlag(t, FLAG_PENDING)) return -1;
  const l = countMembers(bLeft(t), small, mapped);
  const r = countMembers(bRight(t), small, mapped);
  if (l < 0 || r < 0) return -1;
  return 1 + l + r;
}

@inline function isFree(b: i32): bool {
  return !hasFlag(b, FLAG_ALLOCATED) && !hasFlag(b, FLAG_PENDING);
}

export function brokenCachingInvariant(a: CachingAllocator): i32 {
  for (let i = 0; i < recomputed.length; i++) unchecked((recomputed[i] = 0));
  let oversizeAllocations: i64 = 0;
  let oversizeSegments: i64 = 0;
  let pending: i32 = 0;
  let freeMapped = new StaticArray<i32>(2); // [large, small]
  let freeUnmapped = new StaticArray<i32>(2);
  let ordinaryHeads: i32 = 0;
  let expandableHeads: i32 = 0;
  const maxSplit = a.conf.maxSplitSizeBytes;
  const simulated = a.device instanceof SimulatedDevice ? changetype<SimulatedDevice>(a.device) : null;

  const bound = blockIdBound();
  for (let b = 0; b < bound; b++) {
    if (!isLive(b)) continue;
    const size = bSize(b);
    const small = hasFlag(b, FLAG_SMALL);
    const mapped = hasFlag(b, FLAG_MAPPED);
    const allocated = hasFlag(b, FLAG_ALLOCATED);
    const isPending = hasFlag(b, FLAG_PENDING);
    const expandable = isExpandable(b);
    if (hasFlag(b, FLAG_VMS)) {
      // a vms large-pool block: its structure is ../vms/valid.ts's to check; its use counts here
      if (allocated && size >= maxSplit) oversizeAllocations++;
      if (isPending) pending++;
      addUseStats(b, size, small, allocated, isPending);
      continue;
    }

    // INV-CACHE-1: tiling
    if (size == 0 || size % MIN_BLOCK_BYTES != 0) return INV_TILING;
    if (allocated && isPending) return INV_TILING;
    const p = bPrev(b);
    const n = bNext(b);
    if (p != NO_BLOCK && (!isLive(p) || bNext(p) != b || bEnd(p) != bAddr(b))) return INV_TILING;
    if (n != NO_BLOCK && (!isLive(n) || bPrev(n) != b || bEnd(b) != bAddr(n))) return INV_TILING;

    // INV-CACHE-5: a segment is homogeneous
    if (n != NO_BLOCK && (bStream(n) != bStream(b) || hasFlag(n, FLAG_SMALL) != small || bSegment(n) != bSegment(b))) {
      return INV_SEGMENT_SHAPE;
    }

    // INV-CACHE-3: set membership follows the state
    const inTree = hasFlag(b, FLAG_IN_TREE);
    if (!mapped) {
      if (!expandable || allocated || isPending || !inTree) return INV_FREE_SETS;
      unchecked((freeUnmapped[small ? 1 : 0] += 1));
    } else if (!allocated && !isPending) {
      if (!inTree) return INV_FREE_SETS;
      unchecked((freeMapped[small ? 1 : 0] += 1));
    } else if (inTree) {
      return INV_FREE_SETS;
    }

    // INV-CACHE-4: free neighbours alike in mapping are merged
    if (n != NO_BLOCK && isFree(b) && isFree(n) && hasFlag(n, FLAG_MAPPED) == mapped) return INV_MERGED;

    // INV-CACHE-5: pages
    if (expandable) {
      const es = a.segments[bSegment(b)];
      if (es == null) return INV_SEGMENT_SHAPE;
      const page = es.pageBytes;
      const first = es.pageOf(bAddr(b));
      const last = es.pageOf(bEnd(b) - 1);
      if (!mapped) {
        if ((bAddr(b) - es.base) % page != 0 || size % page != 0) return INV_SEGMENT_SHAPE;
      } else {
        for (let i = first; i <= last; i++) if (!es.isPageMapped(i)) return INV_SEGMENT_SHAPE;
        add(STAT_RESERVED_BYTES, small, <i64>size);
      }
      if (p == NO_BLOCK) {
        // INV-CACHE-1/2: the chain spans exactly the reservation
        if (bAddr(b) != es.base || chainBytes(b) != es.vaBytes()) return INV_TILING;
        // INV-CACHE-5: the pages mapped blocks touch are all the mapped pages (none hides in an
        // unmapped block)
        if (mappedPagesTouched(b, page, es.base) != es.mappedPages) return INV_SEGMENT_SHAPE;
        expandableHeads++;
      }
    } else if (p == NO_BLOCK) {
      const segmentBytes = chainBytes(b);
      add(STAT_SEGMENT, small, 1);
      add(STAT_RESERVED_BYTES, small, <i64>segmentBytes);
      if (segmentBytes >= maxSplit) oversizeSegments++;
      ordinaryHeads++;
      if (simulated) {
        // INV-CACHE-1/2: the chain spans exactly one range the device handed out
        const i = simulated.mallocs.indexOf(bAddr(b));
        if (i < 0 || simulated.mallocs.size(i) != segmentBytes) return INV_DISJOINT;
      }
    }

    // INV-CACHE-6: recompute the stats
    if (allocated && size >= maxSplit) oversizeAllocations++;
    addUseStats(b, size, small, allocated, isPending);
    if (isPending) pending++;
    if (mapped && isFree(b) && !expandable && isSplit(b)) {
      add(STAT_INACTIVE_SPLIT, small, 1);
      add(STAT_INACTIVE_SPLIT_BYTES, small, <i64>size);
    }
  }

  // INV-CACHE-2: every device range is one segment, every live reservation one chain
  if (simulated) {
    if (simulated.mallocs.count != ordinaryHeads) return INV_DISJOINT;
    if (simulated.reservations.count != expandableHeads + a.foreignReservations()) return INV_DISJOINT;
  }
  a.addForeignStats();

  // INV-CACHE-3: the sets hold exactly the free blocks, in order
  if (countMembers(a.large.blocks, false, true) != freeMapped[0]) return INV_FREE_SETS;
  if (countMembers(a.small.blocks, true, true) != freeMapped[1]) return INV_FREE_SETS;
  if (countMembers(a.large.unmapped, false, false) != freeUnmapped[0]) return INV_FREE_SETS;
  if (countMembers(a.small.unmapped, true, false) != freeUnmapped[1]) return INV_FREE_SETS;
  if (!setWellFormed(BY_SIZE, a.large.blocks) || !setWellFormed(BY_SIZE, a.small.blocks)) return INV_FREE_SETS;
  if (!setWellFormed(BY_ADDRESS, a.large.unmapped) || !setWellFormed(BY_ADDRESS, a.small.unmapped)) return INV_FREE_SETS;

  // INV-CACHE-6: the kept stats equal the recomputed ones
  for (let kind = 0; kind < ARRAY_STAT_KINDS; kind++) {
    for (let pool = 0; pool < 3; pool++) {
      if (a.stats.get(statIndex(kind, pool, METRIC_CURRENT)) != unchecked(recomputed[kind * 3 + pool])) return INV_STATS;
    }
  }
  if (a.stats.get(SCALAR_OVERSIZE_ALLOCATIONS + METRIC_CURRENT) != oversizeAllocations) return INV_STATS;
  if (a.stats.get(SCALAR_OVERSIZE_SEGMENTS + METRIC_CURRENT) != oversizeSegments) return INV_STATS;

  // INV-CACHE-7: bounds
  if (pending != a.pendingBlocks) return INV_BOUNDS;
  return brokenCachingBounds(a);
}

/** allocation, allocated, active and requested: what a block in use adds to the stats. */
function addUseStats(b: i32, size: u64, small: bool, allocated: bool, isPending: bool): void {
  if (allocated) {
    add(STAT_ALLOCATION, small, 1);
    add(STAT_ALLOCATED_BYTES, small, <i64>size);
  }
  if (allocated || isPending) {
    add(STAT_ACTIVE, small, 1);
    add(STAT_ACTIVE_BYTES, small, <i64>size);
    add(STAT_REQUESTED_BYTES, small, <i64>bRequested(b));
  }
}

/** Distinct pages touched by the mapped blocks of the chain starting at head. */
function mappedPagesTouched(head: i32, page: u64, base: u64): i32 {
  let pages: i32 = 0;
  let lastCounted: i64 = -1;
  for (let b = head; b != NO_BLOCK; b = bNext(b)) {
    if (!hasFlag(b, FLAG_MAPPED)) continue;
    let first = <i64>((bAddr(b) - base) / page);
    const last = <i64>((bEnd(b) - 1 - base) / page);
    if (first <= lastCounted) first = lastCounted + 1;
    if (last >= first) pages += <i32>(last - first + 1);
    if (last > lastCounted) lastCounted = last;
  }
  return pages;
}

/** Bytes of the chain starting at head. */
function chainBytes(head: i32): u64 {
  let bytes: u64 = 0;
  for (let b = head; b != NO_BLOCK; b = bNext(b)) bytes += bSize(b);
  return bytes;
}

// ---- the local check ---------------------------------------------------------------------------
// After every event, the invariants of what the event changed: each changed record (memory/
// changed-blocks.ts) and its two neighbours, against INV-CACHE-1, 3, 4 and 5 as the walk above
// checks them, its segment's ends against the device range or reservation it lies in, and the
// O(1) bounds of INV-CACHE-7. What needs every record (the free sets' shape and counts, the
// recomputed stats, one chain per device range) is left to the whole walk, which the caller runs
// every N events and at the end. O(changed blocks x their pages).

/** The local check of the caching allocator's own blocks (vms passes its small pool's here). */
export function brokenCachingLocalInvariant(a: CachingAllocator): i32 {
  const simulated = a.device instanceof SimulatedDevice ? changetype<SimulatedDevice>(a.device) : null;
  const n = distinctChanges();
  for (let i = 0; i < n; i++) {
    const b = changedBlock(i);
    if (!isLive(b) || hasFlag(b, FLAG_VMS)) continue;
    let broken = brokenCachingBlock(a, b, simulated);
    if (broken == 0 && bPrev(b) != NO_BLOCK) broken = brokenCachingBlock(a, bPrev(b), simulated);
    if (broken == 0 && bNext(b) != NO_BLOCK) broken = brokenCachingBlock(a, bNext(b), simulated);
    if (broken != 0) return broken;
  }
  return brokenCachingBounds(a);
}

/** INV-CACHE-1, 3, 4, 5 at block b (live, not a vms block) and its links. */
function brokenCachingBlock(a: CachingAllocator, b: i32, simulated: SimulatedDevice | null): i32 {
  if (!isLive(b)) return INV_TILING;
  const size = bSize(b);
  const small = hasFlag(b, FLAG_SMALL);
  const mapped = hasFlag(b, FLAG_MAPPED);
  const allocated = hasFlag(b, FLAG_ALLOCATED);
  const isPending = hasFlag(b, FLAG_PENDING);
  // INV-CACHE-1: tiling, links mutual
  if (size == 0 || size % MIN_BLOCK_BYTES != 0 || (allocated && isPending)) return INV_TILING;
  const p = bPrev(b);
  const n = bNext(b);
  if (p != NO_BLOCK && (!isLive(p) || bNext(p) != b || bEnd(p) != bAddr(b))) return INV_TILING;
  if (n != NO_BLOCK && (!isLive(n) || bPrev(n) != b || bEnd(b) != bAddr(n))) return INV_TILING;
  // INV-CACHE-5: a segment is homogeneous
  if (n != NO_BLOCK && (bStream(n) != bStream(b) || hasFlag(n, FLAG_SMALL) != small || bSegment(n) != bSegment(b))) return INV_SEGMENT_SHAPE;
  if (p != NO_BLOCK && (bStream(p) != bStream(b) || hasFlag(p, FLAG_SMALL) != small || bSegment(p) != bSegment(b))) return INV_SEGMENT_SHAPE;
  // INV-CACHE-3: set membership follows the state
  const inTree = hasFlag(b, FLAG_IN_TREE);
  const expandable = isExpandable(b);
  if (!mapped) {
    if (!expandable || allocated || isPending || !inTree) return INV_FREE_SETS;
  } else if (!allocated && !isPending) {
    if (!inTree) return INV_FREE_SETS;
  } else if (inTree) {
    return INV_FREE_SETS;
  }
  // INV-CACHE-4: free neighbours alike in mapping are merged
  if (n != NO_BLOCK && isFree(b) && isFree(n) && hasFlag(n, FLAG_MAPPED) == mapped) return INV_MERGED;
  if (p != NO_BLOCK && isFree(b) && isFree(p) && hasFlag(p, FLAG_MAPPED) == mapped) return INV_MERGED;
  if (expandable) {
    // INV-CACHE-5: pages; INV-CACHE-1: the chain's ends are the reservation's
    const id = bSegment(b);
    if (id >= a.segments.length) return INV_SEGMENT_SHAPE;
    const es = a.segments[id];
    if (es == null) return INV_SEGMENT_SHAPE;
    const page = es.pageBytes;
    if (!mapped) {
      // an unmapped block may span the whole reservation: its end pages are the ones a map or an
      // unmap next to it changes (the walk counts every mapped page)
      if ((bAddr(b) - es.base) % page != 0 || size % page != 0) return INV_SEGMENT_SHAPE;
      if (es.isPageMapped(es.pageOf(bAddr(b))) || es.isPageMapped(es.pageOf(bEnd(b) - 1))) return INV_SEGMENT_SHAPE;
    } else {
      for (let i = es.pageOf(bAddr(b)), last = es.pageOf(bEnd(b) - 1); i <= last; i++) if (!es.isPageMapped(i)) return INV_SEGMENT_SHAPE;
    }
    if (p == NO_BLOCK && bAddr(b) != es.base) return INV_TILING;
    if (n == NO_BLOCK && bEnd(b) != es.base + es.vaBytes()) return INV_TILING;
  } else if (simulated) {
    // INV-CACHE-1/2: the chain lies in one range the device handed out, and spans it
    const r = simulated.mallocs.containing(bAddr(b));
    if (r < 0) return INV_DISJOINT;
    const start = simulated.mallocs.start(r);
    const end = start + simulated.mallocs.size(r);
    if (bEnd(b) > end || (p == NO_BLOCK) != (bAddr(b) == start) || (n == NO_BLOCK) != (bEnd(b) == end)) return INV_DISJOINT;
  }
  return 0;
}

/**
 * INV-CACHE-7 without the pending count: allocated_bytes <= active_bytes <= reserved_bytes per
 * pool, every peak >= its current, total_allocated_memory == reserved_bytes.all.current. O(1).
 */
export function brokenCachingBounds(a: CachingAllocator): i32 {
  if (!a.stats.withinBounds()) return INV_BOUNDS;
  if (<i64>a.totalAllocatedBytes != a.stats.current(STAT_RESERVED_BYTES, POOL_ALL)) return INV_BOUNDS;
  return 0;
}
