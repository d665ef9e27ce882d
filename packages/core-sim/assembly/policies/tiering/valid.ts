// tiering's isValid, at two levels: the whole walk over every arena (its block chain, its pages,
// the host slots, the chunks), recomputing what the policy keeps incrementally and checking the
// numbered invariants listed at the top of tiering.ts, O(blocks + pages + host slots); and the
// local check of what the last events changed (below). Each returns the number of the first broken
// invariant, 0 when all hold.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, FLAG_IN_TREE, bAddr, bSize, bRequested, bPrev, bNext, bLeft,
  bRight, bStream, bSegment, bEnd, hasFlag, blockIdBound, isLive,
} from "../../memory/block-table";
import { BY_SIZE, setWellFormed } from "../../memory/free-set";
import {
  STAT_ALLOCATION, STAT_SEGMENT, STAT_ACTIVE, STAT_ALLOCATED_BYTES, STAT_RESERVED_BYTES,
  STAT_ACTIVE_BYTES, STAT_REQUESTED_BYTES, ARRAY_STAT_KINDS, POOL_ALL, POOL_SMALL, POOL_LARGE,
  METRIC_CURRENT, statIndex,
} from "../stats";
import { MIN_BLOCK_BYTES, isSmallSize } from "../rounding";
import { SimulatedDevice } from "../../device/simulated";
import { distinctChanges, changedBlock } from "../../memory/changed-blocks";
import { linkedInChain } from "../../memory/block-links";
import { TieringPolicy } from "./tiering";
import { TierArena, PAGE_BYTES, NO_SLOT, DROPPED } from "./tier-arena";

const INV_TILING: i32 = 1;
const INV_FREE_SET: i32 = 2;
const INV_TOUCHES: i32 = 3;
const INV_PAGE_STATE: i32 = 4;
const INV_CHUNKS: i32 = 5;
const INV_HOST: i32 = 6;
const INV_STATS: i32 = 7;
const INV_USED_RESIDENT: i32 = 8;
const INV_PREFETCH: i32 = 9;

// Recomputed current values: [kind * 3 + pool].
const recomputed = new StaticArray<i64>(ARRAY_STAT_KINDS * 3);
// Per arena, touches recomputed from the blocks (kept zeroed between checks).
const recount = new Array<StaticArray<i32>>();
// host slot -> the check generation that saw a page in it
let slotSeen = new StaticArray<i32>(0);
let generation: i32 = 0;

@inline function add(kind: i32, small: bool, amount: i64): void {
  unchecked((recomputed[kind * 3 + POOL_ALL] += amount));
  unchecked((recomputed[kind * 3 + (small ? POOL_SMALL : POOL_LARGE)] += amount));
}

@inline function isFree(b: i32): bool {
  return !hasFlag(b, FLAG_ALLOCATED) && !hasFlag(b, FLAG_PENDING);
}

/** Members of a free-set subtree, or -1 when one is not a free block of arena `id`. */
function members(t: i32, id: i32): i32 {
  if (t == NO_BLOCK) return 0;
  if (!isLive(t) || bSegment(t) != id || !isFree(t)) return -1;
  const l = members(bLeft(t), id);
  const r = members(bRight(t), id);
  return l < 0 || r < 0 ? -1 : 1 + l + r;
}

/** INV-TIER-4 for one page: touched pages are resident or on the host, untouched ones neither. */
@inline function pageStateHolds(a: TierArena, p: i32): bool {
  const resident = a.handle(p) != 0;
  const onHost = a.hostSlot(p) != NO_SLOT;
  return a.touch(p) > 0 ? resident != onHost : !resident && !onHost;
}

export function brokenTieringInvariant(t: TieringPolicy): i32 {
  for (let i = 0; i < recomputed.length; i++) unchecked((recomputed[i] = 0));
  generation++;
  if (slotSeen.length != t.host.count) slotSeen = new StaticArray<i32>(t.host.count);
  const simulated = t.device instanceof SimulatedDevice ? changetype<SimulatedDevice>(t.device) : null;
  let chainBlocks = 0;
  let pending = 0;
  let mappedPages = 0;
  let hostPages = 0;
  for (let id = 0; id < t.arenas.length; id++) {
    const a = t.arena(id);
    while (recount.length <= id) recount.push(new StaticArray<i32>(0));
    if (recount[id].length != a.capacity) recount[id] = new StaticArray<i32>(a.capacity);
    const counts = recount[id];
    add(STAT_SEGMENT, false, 1);

    // INV-TIER-1, 2: the chain tiles the reservation; free blocks are in the free set and merged
    let at = a.base;
    let freeBlocks = 0;
    if (a.head == NO_BLOCK || bPrev(a.head) != NO_BLOCK) return INV_TILING;
    for (let b = a.head; b != NO_BLOCK; b = bNext(b)) {
      const size = bSize(b);
      if (!isLive(b) || bAddr(b) != at || size == 0 || size % MIN_BLOCK_BYTES != 0) return INV_TILING;
      if (bSegment(b) != id || bStream(b) != a.stream) return INV_TILING;
      const n = bNext(b);
      if (n != NO_BLOCK && bPrev(n) != b) return INV_TILING;
      at += size;
      chainBlocks++;
      const allocated = hasFlag(b, FLAG_ALLOCATED);
      const isPending = hasFlag(b, FLAG_PENDING);
      if (allocated && isPending) return INV_TILING;
      if (!allocated && !isPending) {
        if (!hasFlag(b, FLAG_IN_TREE)) return INV_FREE_SET;
        if (n != NO_BLOCK && isFree(n)) return INV_FREE_SET;
        freeBlocks++;
        continue;
      }
      if (hasFlag(b, FLAG_IN_TREE)) return INV_FREE_SET;
      const small = isSmallSize(size);
      if (isPending) pending++;
      if (allocated) {
        add(STAT_ALLOCATION, small, 1);
        add(STAT_ALLOCATED_BYTES, small, <i64>size);
      }
      add(STAT_ACTIVE, small, 1);
      add(STAT_ACTIVE_BYTES, small, <i64>size);
      add(STAT_REQUESTED_BYTES, small, <i64>bRequested(b));
      const end = a.endPage(bAddr(b), size);
      if (end > a.highPage) return INV_TOUCHES;
      for (let p = a.pageOf(bAddr(b)); p < end; p++) unchecked((counts[p] += 1));
    }
    if (at != a.base + a.vaBytes()) return INV_TILING;
    if (members(a.freeRoot, id) != freeBlocks || !setWellFormed(BY_SIZE, a.freeRoot)) return INV_FREE_SET;

    // INV-TIER-3, 4, 6: touches, page states, host slots
    let mapped = 0;
    for (let p = 0; p < a.highPage; p++) {
      const expected = unchecked(counts[p]);
      unchecked((counts[p] = 0));
      if (a.touch(p) != expected) return INV_TOUCHES;
      if (!pageStateHolds(a, p)) return INV_PAGE_STATE;
      if (a.resident(p)) {
        mapped++;
        if (simulated) {
          const i = simulated.mappings.indexOf(a.pageAddress(p));
          if (i < 0 || simulated.mappings.tag(i) != a.handle(p) || simulated.mappings.size(i) != PAGE_BYTES) return INV_CHUNKS;
        }
      }
      const slot = a.hostSlot(p);
      if (slot != NO_SLOT && slot != DROPPED) {
        if (slot < 0 || slot >= t.host.count || unchecked(t.host.holder[slot]) != 1) return INV_HOST;
        if (unchecked(slotSeen[slot]) == generation) return INV_HOST;
        unchecked((slotSeen[slot] = generation));
        hostPages++;
      }
    }
    if (mapped != countMapped(a)) return INV_CHUNKS;
    mappedPages += mapped;
  }
  if (pending != t.pendingBlocks) return INV_STATS;

  // INV-TIER-1: every live record is in a chain
  let live = 0;
  const bound = blockIdBound();
  for (let b = 0; b < bound; b++) if (isLive(b)) live++;
  if (live != chainBlocks) return INV_TILING;

  // INV-TIER-5: chunks, mappings, reserved bytes
  if (mappedPages != t.mappedPages) return INV_CHUNKS;
  const sums = brokenTieringSums(t);
  if (sums != 0) return sums;

  // INV-TIER-9: over every use, evictions are paid for by the chunks the uses' batches lacked
  if (t.usesEvictedPages > t.usesShortPages || t.usesShortPages > t.usesMissingPages + t.prefetchedPages || t.prefetchedPages > t.pagesIn) return INV_PREFETCH;

  // INV-TIER-6: slots in use are the host pages'
  if (hostPages != t.pagesOnHost) return INV_HOST;
  let held = 0;
  for (let s = 0; s < t.host.count; s++) if (unchecked(t.host.holder[s]) == 1) held++;
  if (held != t.host.used) return INV_HOST;

  // INV-TIER-7: the kept stats equal the recomputed ones (reserved is INV-TIER-5's)
  for (let kind = 0; kind < ARRAY_STAT_KINDS; kind++) {
    if (kind == STAT_RESERVED_BYTES) continue;
    for (let pool = 0; pool < 3; pool++) {
      if (t.stats.get(statIndex(kind, pool, METRIC_CURRENT)) != unchecked(recomputed[kind * 3 + pool])) return INV_STATS;
    }
  }
  return 0;
}

/** Pages of arena a with a chunk mapped, counted from its tables. */
function countMapped(a: TierArena): i32 {
  let n = 0;
  for (let p = 0; p < a.highPage; p++) if (a.resident(p)) n++;
  return n;
}

// ---- the local check ---------------------------------------------------------------------------
// After every event (and after every position's uses), the invariants of what changed: each
// changed block and its neighbours against INV-TIER-1 and 2 (its place in its arena's chain, its
// free-set membership), the pages they cover against INV-TIER-3 and 4; the blocks the last uses
// named against INV-TIER-8, the evictions of the uses since the last check against INV-TIER-9;
// then the O(1) sums of INV-TIER-5 and 6 and the peaks of INV-TIER-7.
// What needs every record, page or slot (the free sets' shape, the recomputed stats, no slot held
// twice) is the whole walk's, which the caller runs every N events and at the end.

export function brokenTieringLocalInvariant(t: TieringPolicy): i32 {
  const n = distinctChanges();
  for (let i = 0; i < n; i++) {
    const b = changedBlock(i);
    if (!isLive(b)) continue;
    let broken = brokenArenaBlock(t, b);
    if (broken == 0 && bPrev(b) != NO_BLOCK) broken = brokenArenaBlock(t, bPrev(b));
    if (broken == 0 && bNext(b) != NO_BLOCK) broken = brokenArenaBlock(t, bNext(b));
    if (broken != 0) return broken;
  }
  // INV-TIER-8: the last uses' blocks are wholly resident (checked once, right after the uses)
  for (let k = 0; k < t.usedCount; k++) {
    const h = unchecked(t.usedHandles[k]);
    if (h < 0 || !isLive(h)) continue;
    const a = t.arena(bSegment(h));
    const end = a.endPage(bAddr(h), bSize(h));
    for (let p = a.pageOf(bAddr(h)); p < end; p++) if (!a.resident(p)) return INV_USED_RESIDENT;
  }
  t.usedCount = 0;
  // INV-TIER-9: the uses since the last check (every operator at the position, not only the last)
  // evicted no more pages than their batches (missed plus prefetched) lacked beyond the chunks free
  // under the capacity before each
  const evicted = t.useEvicted;
  const lacked = t.useLacked;
  t.useEvicted = 0;
  t.useLacked = 0;
  if (evicted > lacked || t.usePrefetched < 0) return INV_PREFETCH;
  return brokenTieringSums(t);
}

/** INV-TIER-1 to 4 at block b and the pages it covers. */
function brokenArenaBlock(t: TieringPolicy, b: i32): i32 {
  const id = bSegment(b);
  if (!isLive(b) || id < 0 || id >= t.arenas.length) return INV_TILING;
  const a = t.arena(id);
  const size = bSize(b);
  const end = a.base + a.vaBytes();
  if (size == 0 || size % MIN_BLOCK_BYTES != 0 || bAddr(b) < a.base || bEnd(b) > end) return INV_TILING;
  if (bStream(b) != a.stream) return INV_TILING;
  if (!linkedInChain(b, a.head, a.base, end)) return INV_TILING;
  const prev = bPrev(b);
  const next = bNext(b);
  if (hasFlag(b, FLAG_ALLOCATED) && hasFlag(b, FLAG_PENDING)) return INV_TILING;
  if (isFree(b)) {
    if (!hasFlag(b, FLAG_IN_TREE)) return INV_FREE_SET;
    if ((prev != NO_BLOCK && isFree(prev)) || (next != NO_BLOCK && isFree(next))) return INV_FREE_SET;
  } else if (hasFlag(b, FLAG_IN_TREE)) {
    return INV_FREE_SET;
  }
  const first = a.pageOf(bAddr(b));
  const last = a.endPage(bAddr(b), size);
  if (!isFree(b) && last > a.highPage) return INV_TOUCHES;
  for (let p = first; p < min(last, a.highPage); p++) {
    const expected = p == first || p == last - 1 ? touchesAt(a, p, b) : (isFree(b) ? 0 : 1);
    if (a.touch(p) != expected) return INV_TOUCHES;
    if (!pageStateHolds(a, p)) return INV_PAGE_STATE;
  }
  return 0;
}

/** Allocated or pending blocks touching page p of arena a, found from b, a block over that page. */
function touchesAt(a: TierArena, p: i32, b: i32): i32 {
  const start = a.pageAddress(p);
  const stop = start + PAGE_BYTES;
  let n = isFree(b) ? 0 : 1;
  for (let x = bPrev(b); x != NO_BLOCK && bEnd(x) > start; x = bPrev(x)) if (!isFree(x)) n++;
  for (let x = bNext(b); x != NO_BLOCK && bAddr(x) < stop; x = bNext(x)) if (!isFree(x)) n++;
  return n;
}

/** INV-TIER-5, 6 as sums, and INV-TIER-7's segment count and peaks. O(1) but for the stats' peaks. */
function brokenTieringSums(t: TieringPolicy): i32 {
  if (t.chunks != t.mappedPages) return INV_CHUNKS;
  if (t.capacityChunks > 0 && t.peakChunks > t.capacityChunks) return INV_CHUNKS;
  const bytes = <i64>t.chunks * <i64>PAGE_BYTES;
  if (t.stats.get(statIndex(STAT_RESERVED_BYTES, POOL_ALL, METRIC_CURRENT)) != bytes) return INV_CHUNKS;
  if (t.stats.get(statIndex(STAT_RESERVED_BYTES, POOL_LARGE, METRIC_CURRENT)) != bytes) return INV_CHUNKS;
  const simulated = t.device instanceof SimulatedDevice ? changetype<SimulatedDevice>(t.device) : null;
  if (simulated) {
    if (simulated.mappings.count != t.mappedPages) return INV_CHUNKS;
    if (<i64>simulated.physicalBytes != bytes) return INV_CHUNKS;
  }
  if (t.host.used != t.pagesOnHost || t.host.used > t.host.peakUsed || t.host.peakUsed > t.host.count || t.pagesDropped < 0) return INV_HOST;
  if (t.stats.get(statIndex(STAT_SEGMENT, POOL_ALL, METRIC_CURRENT)) != <i64>t.arenas.length) return INV_STATS;
  for (let kind = 0; kind < ARRAY_STAT_KINDS; kind++) {
    for (let pool = 0; pool < 3; pool++) {
      if (t.stats.peak(kind, pool) < t.stats.current(kind, pool)) return INV_STATS;
    }
  }
  return 0;
}
