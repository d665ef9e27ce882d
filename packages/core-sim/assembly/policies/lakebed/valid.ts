// lakebed's isValid, at two levels: the whole walk over every arena (its block chain, its mapped
// pages), every chunk pool (its chunks' alias lists, its free list) and the live block records, recomputing what the policy keeps
// incrementally and checking the numbered invariants listed at the top of lakebed.ts, O(blocks +
// mapped pages); and the local check of what the last events changed (below). Each returns the
// number of the first broken invariant, 0 when all hold.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, FLAG_SMALL, FLAG_IN_TREE, bAddr, bSize, bRequested,
  bPrev, bNext, bLeft, bRight, bStream, bSegment, bEnd, hasFlag, blockIdBound, isLive,
} from "../../memory/block-table";
import { BY_SIZE, setWellFormed } from "../../memory/free-set";
import {
  STAT_ALLOCATION, STAT_SEGMENT, STAT_ACTIVE, STAT_ALLOCATED_BYTES, STAT_RESERVED_BYTES,
  STAT_ACTIVE_BYTES, STAT_REQUESTED_BYTES, ARRAY_STAT_KINDS, POOL_ALL, POOL_SMALL, POOL_LARGE,
  METRIC_CURRENT, METRIC_PEAK, statIndex,
} from "../stats";
import { MIN_BLOCK_BYTES } from "../rounding";
import { SimulatedDevice } from "../../device/simulated";
import { LakebedPolicy } from "./lakebed";
import { Arena, NO_PAGE, UNMAPPED } from "./arena";
import { ChunkPool, NO_CHUNK, NO_OWNER } from "./chunk-pool";
import { distinctChanges, changedBlock } from "../../memory/changed-blocks";
import { linkedInChain } from "../../memory/block-links";

const INV_TILING: i32 = 1;
const INV_FREE_SET: i32 = 2;
const INV_TOUCHES: i32 = 3;
const INV_IDLE: i32 = 4;
const INV_CHUNKS: i32 = 5;
const INV_RESERVED: i32 = 6;
const INV_STATS: i32 = 7;
const INV_FORECAST: i32 = 8;
const INV_ALIASES: i32 = 9;

// Recomputed current values: [kind * 3 + pool].
const recomputed = new StaticArray<i64>(ARRAY_STAT_KINDS * 3);
// Per arena, touches recomputed from the blocks (kept zeroed between checks).
const recount = new Array<StaticArray<i32>>();
// handle -> the check generation that last saw it (a live chunk)
let seen = new StaticArray<i32>(1024);
let generation: i32 = 0;
// Per chunk pool (there are at most two), mapped pages counted by the walk.
const mappedPerPool = new StaticArray<i32>(2);

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

/** False when handle h was already seen in this check (two slots hold one chunk). */
function firstSight(h: i32): bool {
  if (h >= seen.length) {
    const grown = new StaticArray<i32>(max(h + 1, seen.length * 2));
    memory.copy(changetype<usize>(grown), changetype<usize>(seen), <usize>seen.length << 2);
    seen = grown;
  }
  if (unchecked(seen[h]) == generation) return false;
  unchecked((seen[h] = generation));
  return true;
}

export function brokenLakebedInvariant(lb: LakebedPolicy): i32 {
  for (let i = 0; i < recomputed.length; i++) unchecked((recomputed[i] = 0));
  generation++;
  const simulated = lb.device instanceof SimulatedDevice ? changetype<SimulatedDevice>(lb.device) : null;
  let chainBlocks = 0;
  let pending = 0;
  let mappedPages = 0;
  for (let i = 0; i < 2; i++) unchecked((mappedPerPool[i] = 0));
  for (let id = 0; id < lb.arenas.length; id++) {
    const a = lb.arena(id);
    while (recount.length <= id) recount.push(new StaticArray<i32>(0));
    if (recount[id].length != a.capacity) recount[id] = new StaticArray<i32>(a.capacity);
    const counts = recount[id];
    add(STAT_SEGMENT, a.small, 1);

    // INV-LB-1, INV-LB-2: the chain tiles the reservation; free blocks are cached and merged
    let at = a.base;
    let freeBlocks = 0;
    if (a.head == NO_BLOCK || bPrev(a.head) != NO_BLOCK) return INV_TILING;
    for (let b = a.head; b != NO_BLOCK; b = bNext(b)) {
      const size = bSize(b);
      if (!isLive(b) || bAddr(b) != at || size == 0 || size % MIN_BLOCK_BYTES != 0) return INV_TILING;
      if (bSegment(b) != id || bStream(b) != a.stream || hasFlag(b, FLAG_SMALL) != a.small) return INV_TILING;
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
      if (isPending) pending++;
      if (allocated) {
        add(STAT_ALLOCATION, a.small, 1);
        add(STAT_ALLOCATED_BYTES, a.small, <i64>size);
      }
      add(STAT_ACTIVE, a.small, 1);
      add(STAT_ACTIVE_BYTES, a.small, <i64>size);
      add(STAT_REQUESTED_BYTES, a.small, <i64>bRequested(b));
      const end = a.endPage(bAddr(b), size);
      if (end > a.highPage) return INV_TOUCHES;
      for (let p = a.pageOf(bAddr(b)); p < end; p++) unchecked((counts[p] += 1));
    }
    if (at != a.base + a.vaBytes()) return INV_TILING;
    if (members(a.freeRoot, id) != freeBlocks || !setWellFormed(BY_SIZE, a.freeRoot)) return INV_FREE_SET;

    // INV-LB-3, INV-LB-5: touches, mapped pages
    // INV-LB-5: an arena's pages are its pool's chunk size
    if (a.poolId < 0 || a.poolId >= lb.pools.length || a.pageBytes != lb.pool(a).chunkBytes) return INV_CHUNKS;
    const pool = lb.pool(a);
    let mapped = 0;
    for (let p = 0; p < a.highPage; p++) {
      const t = a.touch(p);
      const expected = unchecked(counts[p]);
      unchecked((counts[p] = 0));
      if (t != expected) return INV_TOUCHES;
      if (brokenForecast(lb, a, p)) return INV_FORECAST;
      const s = a.chunkAt(p);
      if (s == UNMAPPED) {
        if (t != 0) return INV_TOUCHES;
        continue;
      }
      mapped++;
      if (!liveSlot(pool, s) || pool.arenaOf(s) != id) return INV_ALIASES;
      if (t != 0 && pool.ownerOf(s) != p) return INV_TOUCHES;
      if (simulated) {
        const i = simulated.mappings.indexOf(a.pageAddress(p));
        if (i < 0 || simulated.mappings.tag(i) != pool.handleOf(s) || simulated.mappings.size(i) != a.pageBytes) return INV_CHUNKS;
      }
    }
    for (let p = a.highPage; p < a.capacity; p++) if (a.chunkAt(p) != UNMAPPED || a.touch(p) != 0) return INV_TOUCHES;
    if (mapped != a.mappedPages) return INV_CHUNKS;
    mappedPages += mapped;
    unchecked((mappedPerPool[a.poolId] += mapped));
  }

  // INV-LB-4, INV-LB-6, INV-LB-9: each pool's chunks, their aliases and its free list
  let chunks = 0;
  let physicalBytes: u64 = 0;
  for (let i = 0; i < lb.pools.length; i++) {
    const pool = unchecked(lb.pools[i]);
    if (pool.id != i) return INV_CHUNKS;
    const broken = brokenPool(lb, pool, unchecked(mappedPerPool[i]));
    if (broken != 0) return broken;
    chunks += pool.chunks;
    physicalBytes += <u64>pool.chunks * pool.chunkBytes;
  }
  if (pending != lb.pendingBlocks) return INV_STATS;

  // INV-LB-1: every live record is in a chain
  let live = 0;
  const bound = blockIdBound();
  for (let b = 0; b < bound; b++) if (isLive(b)) live++;
  if (live != chainBlocks) return INV_TILING;

  // INV-LB-5, INV-LB-6: the device holds exactly these mappings and chunks
  if (chunks != lb.chunks || physicalBytes != lb.chunkBytes) return INV_RESERVED;
  if (brokenPeak(lb)) return INV_RESERVED;
  if (simulated) {
    if (simulated.mappings.count != mappedPages) return INV_CHUNKS;
    if (simulated.physicalBytes != lb.chunkBytes) return INV_RESERVED;
  }
  for (let pool = 0; pool < 3; pool++) {
    if (lb.stats.get(statIndex(STAT_RESERVED_BYTES, pool, METRIC_CURRENT)) != unchecked(recomputed[STAT_RESERVED_BYTES * 3 + pool])) {
      return INV_RESERVED;
    }
  }

  // INV-LB-7: the kept stats equal the recomputed ones
  for (let kind = 0; kind < ARRAY_STAT_KINDS; kind++) {
    for (let pool = 0; pool < 3; pool++) {
      if (lb.stats.get(statIndex(kind, pool, METRIC_CURRENT)) != unchecked(recomputed[kind * 3 + pool])) return INV_STATS;
    }
  }
  if (!lb.stats.withinBounds()) return INV_STATS;
  return 0;
}

/** Whether s is a slot of the pool that holds a chunk. */
@inline function liveSlot(pool: ChunkPool, s: i32): bool {
  return s >= 0 && s < pool.handle.length && pool.handleOf(s) != 0;
}

/**
 * INV-LB-9, INV-LB-4 and the pool's part of INV-LB-6 over every slot of `pool`, whose arenas map
 * `mapped` pages: each chunk's alias list, its free list, the reserved bytes by small and large.
 */
function brokenPool(lb: LakebedPolicy, pool: ChunkPool, mapped: i32): i32 {
  let live = 0;
  let aliases = 0;
  let unowned = 0;
  for (let s = 0; s < pool.handle.length; s++) {
    if (!liveSlot(pool, s)) {
      if (pool.handleOf(s) != 0 || pool.arenaOf(s) != -1) return INV_ALIASES;
      continue;
    }
    live++;
    if (!firstSight(pool.handleOf(s))) return INV_CHUNKS;
    // INV-LB-9: the chunk is mapped at a list of pages of one arena, its owner among them
    const id = pool.arenaOf(s);
    const count = unchecked(pool.aliasCount[s]);
    if (id < 0 || id >= lb.arenas.length || count < 1) return INV_ALIASES;
    const a = lb.arena(id);
    if (a.poolId != pool.id) return INV_ALIASES;
    const owner = pool.ownerOf(s);
    let ownerFound = false;
    let n = 0;
    let prev = NO_PAGE;
    for (let p = unchecked(pool.aliasHead[s]); p != NO_PAGE; p = unchecked(a.aliasNext[p])) {
      if (n++ >= count || p < 0 || p >= a.highPage || a.chunkAt(p) != s || unchecked(a.aliasPrev[p]) != prev) return INV_ALIASES;
      if (p == owner) ownerFound = true;
      else if (a.touch(p) != 0) return INV_TOUCHES;
      prev = p;
    }
    if (n != count) return INV_ALIASES;
    aliases += count;
    if (owner == NO_OWNER) unowned++;
    else if (!ownerFound || a.touch(owner) == 0) return INV_ALIASES;
    add(STAT_RESERVED_BYTES, a.small, <i64>pool.chunkBytes);
  }
  // every mapped page is in the list of the chunk it maps (the lists are disjoint and hold only such pages)
  if (live != pool.chunks || aliases != mapped) return INV_ALIASES;
  // INV-LB-4: the free list links exactly the chunks no page owns, both ways
  let n = 0;
  let prev = NO_CHUNK;
  for (let s = pool.freeHead; s != NO_CHUNK; s = unchecked(pool.freeNext[s])) {
    if (n++ >= unowned || !liveSlot(pool, s) || pool.ownerOf(s) != NO_OWNER || unchecked(pool.freePrev[s]) != prev) return INV_IDLE;
    prev = s;
  }
  if (prev != pool.freeTail || n != unowned || pool.freeCount != unowned) return INV_IDLE;
  return 0;
}

// ---- the local check ---------------------------------------------------------------------------
// After every event, the invariants of what the event changed (memory/changed-blocks.ts): each
// changed block and its two neighbours against INV-LB-1 and 2 (its place in its arena's chain,
// its pool membership), and every page they cover against INV-LB-3, 4, 8 and 9 (touches recounted
// from the blocks over that page, a touched page owning the chunk it maps, a free chunk linked
// both ways in its pool's free list, the page linked both ways among its chunk's aliases, the
// reuse record in the past); then the O(arenas + pools) sums of INV-LB-5 and 6 (mapped pages ==
// the device's mappings; chunks x each pool's chunk size == chunkBytes == the device's physical
// bytes == reserved_bytes) and INV-LB-7's bounds. What needs every record, page or chunk (the free
// sets' shape and counts, the free lists' lengths, whole alias lists, no chunk in two slots,
// reserved bytes by small and large, the recomputed stats) is left to the whole walk,
// which the caller runs every N events and at the end. O(changed blocks x (their mapped pages +
// the blocks sharing their end pages)).

export function brokenLakebedLocalInvariant(lb: LakebedPolicy): i32 {
  const n = distinctChanges();
  for (let i = 0; i < n; i++) {
    const b = changedBlock(i);
    if (!isLive(b)) continue;
    let broken = brokenArenaBlock(lb, b);
    if (broken == 0 && bPrev(b) != NO_BLOCK) broken = brokenArenaBlock(lb, bPrev(b));
    if (broken == 0 && bNext(b) != NO_BLOCK) broken = brokenArenaBlock(lb, bNext(b));
    if (broken != 0) return broken;
  }
  return brokenLakebedSums(lb);
}

/** INV-LB-1 to 4, 8 and 9 at block b and the pages it covers. */
function brokenArenaBlock(lb: LakebedPolicy, b: i32): i32 {
  const id = bSegment(b);
  if (!isLive(b) || id < 0 || id >= lb.arenas.length) return INV_TILING;
  const a = lb.arena(id);
  const size = bSize(b);
  const end = a.base + a.vaBytes();
  if (size == 0 || size % MIN_BLOCK_BYTES != 0 || bAddr(b) < a.base || bEnd(b) > end) return INV_TILING;
  if (bStream(b) != a.stream || hasFlag(b, FLAG_SMALL) != a.small) return INV_TILING;
  if (!linkedInChain(b, a.head, a.base, end)) return INV_TILING;
  const prev = bPrev(b);
  const next = bNext(b);
  const allocated = hasFlag(b, FLAG_ALLOCATED);
  const isPending = hasFlag(b, FLAG_PENDING);
  if (allocated && isPending) return INV_TILING;
  if (isFree(b)) {
    if (!hasFlag(b, FLAG_IN_TREE)) return INV_FREE_SET;
    if ((prev != NO_BLOCK && isFree(prev)) || (next != NO_BLOCK && isFree(next))) return INV_FREE_SET;
  } else if (hasFlag(b, FLAG_IN_TREE)) {
    return INV_FREE_SET;
  }
  // INV-LB-3, 4 on the pages b covers (pages never mapped need no look: nothing touches them, as
  // the recount says for a free block, and an allocated block there fails INV-LB-3)
  const first = a.pageOf(bAddr(b));
  const last = a.endPage(bAddr(b), size);
  if (!isFree(b) && last > a.highPage) return INV_TOUCHES;
  for (let p = first; p < min(last, a.highPage); p++) {
    const t = a.touch(p);
    if (brokenForecast(lb, a, p)) return INV_FORECAST;
    // pages inside b are b's alone; its first and last page may share blocks with its neighbours
    const expected = p == first || p == last - 1 ? touchesAt(a, p, b) : (isFree(b) ? 0 : 1);
    if (t != expected) return INV_TOUCHES;
    const s = a.chunkAt(p);
    if (s == UNMAPPED) {
      if (t != 0) return INV_TOUCHES;
      continue;
    }
    const pool = lb.pool(a);
    if (!liveSlot(pool, s) || pool.arenaOf(s) != id) return INV_ALIASES;
    // INV-LB-9: the page is linked both ways among its chunk's pages
    const prevPage = unchecked(a.aliasPrev[p]);
    const nextPage = unchecked(a.aliasNext[p]);
    if (prevPage == NO_PAGE ? unchecked(pool.aliasHead[s]) != p : a.chunkAt(prevPage) != s || unchecked(a.aliasNext[prevPage]) != p) return INV_ALIASES;
    if (nextPage != NO_PAGE && (a.chunkAt(nextPage) != s || unchecked(a.aliasPrev[nextPage]) != p)) return INV_ALIASES;
    const owner = pool.ownerOf(s);
    if (t != 0 && owner != p) return INV_TOUCHES;
    if (owner == NO_OWNER) {
      // INV-LB-4: a free chunk is linked both ways in its pool's free list
      const prevChunk = unchecked(pool.freePrev[s]);
      const nextChunk = unchecked(pool.freeNext[s]);
      if (prevChunk == NO_CHUNK ? pool.freeHead != s : unchecked(pool.freeNext[prevChunk]) != s) return INV_IDLE;
      if (nextChunk == NO_CHUNK ? pool.freeTail != s : unchecked(pool.freePrev[nextChunk]) != s) return INV_IDLE;
    } else if (owner == p ? t == 0 : a.touch(owner) == 0) {
      return INV_ALIASES;
    }
  }
  return 0;
}

/** INV-LB-8 at page p of arena a (a page the tables hold): its reuse record is in the past, and a mapped page nobody touches was let go. */
function brokenForecast(lb: LakebedPolicy, a: Arena, p: i32): bool {
  const released = unchecked(a.releasedAt[p]);
  const gap = unchecked(a.idleGap[p]);
  const idle = a.chunkAt(p) != UNMAPPED && a.touch(p) == 0;
  return released > lb.clock || (idle && released <= 0) || gap < 0 || (gap > 0 && gap >= lb.clock);
}

/** Allocated or pending blocks touching page p of arena a, found from b, a block over that page. */
function touchesAt(a: Arena, p: i32, b: i32): i32 {
  const start = a.pageAddress(p);
  const stop = start + a.pageBytes;
  let t = isFree(b) ? 0 : 1;
  for (let x = bPrev(b); x != NO_BLOCK && bEnd(x) > start; x = bPrev(x)) if (!isFree(x)) t++;
  for (let x = bNext(b); x != NO_BLOCK && bAddr(x) < stop; x = bNext(x)) if (!isFree(x)) t++;
  return t;
}

/**
 * INV-LB-6's peak: chunkBytes <= the stats' peak reserved <= peakChunkBytes (equal to it until
 * reset_peak_memory_stats lowers the stats' peak), so that a chunk created without raising the
 * policy's own peak, which releaseOthersFree reads, is caught.
 */
function brokenPeak(lb: LakebedPolicy): bool {
  const statsPeak = lb.stats.get(statIndex(STAT_RESERVED_BYTES, POOL_ALL, METRIC_PEAK));
  return <i64>lb.chunkBytes > statsPeak || statsPeak > <i64>lb.peakChunkBytes;
}

/** INV-LB-5, 6 as sums over the arenas and pools, and INV-LB-7's bounds. O(arenas + pools). */
function brokenLakebedSums(lb: LakebedPolicy): i32 {
  let mapped: i64 = 0;
  for (let id = 0; id < lb.arenas.length; id++) mapped += lb.arena(id).mappedPages;
  let chunks: i64 = 0;
  let bytes: i64 = 0;
  for (let i = 0; i < lb.pools.length; i++) {
    const pool = unchecked(lb.pools[i]);
    chunks += pool.chunks;
    bytes += <i64>pool.chunks * <i64>pool.chunkBytes;
  }
  if (chunks != <i64>lb.chunks || bytes != <i64>lb.chunkBytes) return INV_RESERVED;
  if (brokenPeak(lb)) return INV_RESERVED;
  const small = lb.stats.get(statIndex(STAT_RESERVED_BYTES, POOL_SMALL, METRIC_CURRENT));
  const large = lb.stats.get(statIndex(STAT_RESERVED_BYTES, POOL_LARGE, METRIC_CURRENT));
  if (small < 0 || large < 0 || small + large != bytes) return INV_RESERVED;
  if (lb.stats.get(statIndex(STAT_RESERVED_BYTES, POOL_ALL, METRIC_CURRENT)) != <i64>lb.chunkBytes) return INV_RESERVED;
  const simulated = lb.device instanceof SimulatedDevice ? changetype<SimulatedDevice>(lb.device) : null;
  if (simulated) {
    if (<i64>simulated.mappings.count != mapped) return INV_CHUNKS;
    if (simulated.physicalBytes != lb.chunkBytes) return INV_RESERVED;
  }
  if (lb.stats.get(statIndex(STAT_SEGMENT, POOL_ALL, METRIC_CURRENT)) != <i64>lb.arenas.length) return INV_STATS;
  if (!lb.stats.withinBounds()) return INV_STATS;
  return 0;
}
