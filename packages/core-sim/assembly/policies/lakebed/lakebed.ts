// lakebed: our own policy. Every (stream, small/large) pair gets one virtual arena (a reservation
// as large as expandable segments take) packed tightly: requests are rounded to 512 bytes and
// placed best fit (smallest free range that holds them, lowest address on ties), as PyTorch places
// blocks inside a segment, but the arena never ends and never splits into segments. Within that
// range a block goes to whichever end needs fewer new chunks, then fewer newly touched pages (the
// front, as PyTorch, on ties): at the back its last page may be one the next block already backs,
// so that one page fewer is touched and backed. Physical memory is fungible chunks of the arena's
// page size (chunk-pool.ts): 2 MiB for small arenas and lakebed_large_page_mb, 20 MiB by default,
// for large ones. A page of an arena holds a chunk while a live block touches it. When a block is
// freed, the pages it alone touched become idle but keep their chunk (no driver call); when a new
// block touches a page that has no chunk, the policy takes the chunk of an idle page of the same
// pool (unmap there, map here), the one whose next touch is forecast furthest away
// (reuse-forecast.ts), and creates a new chunk only when none is idle. So physical memory stays
// within one page per hole edge of the live bytes, and driver calls are made only when the live
// set moves to pages that have no chunk.
//
// Why 20 MiB pages for large blocks: the driver's work is per mapping. cuMemSetAccess and
// cuMemUnmap over a range of N mappings cost about N calls over one (measured on the H100,
// device/cost-model.ts), and every page backed costs a cuMemCreate, a cuMemMap and its share of a
// cuMemSetAccess: 2 MiB pages make ten times the mappings of PyTorch's expandable segments for the
// same bytes. 20 MiB pages cost up to 18 MiB more per hole edge; lakebed_large_page_mb:2 is the
// tightest packing, at that price in driver time (docs/policies.md has both).
//
// Versus GMLake (vms.ts): stitching becomes unnecessary (a block is contiguous in its arena's
// virtual range, whatever chunks back it), partly used blocks never strand their free pages (a
// free page inside a hole is a chunk for anyone), and new chunks mix freely with old ones. Versus
// expandable segments: 512-byte packing, and pages freed anywhere serve new blocks anywhere,
// across streams too.
//
// Streams: a page's chunk moves to another page only through an unmap, which on a GPU must wait
// for the work queued on the page's stream (as PyTorch's expandable segments synchronize before
// unmapping). The victim is chosen among the oldest idle pages, which makes that wait unlikely to
// block; the policy counts those moves (chunkMoves).
//
// Invariants (checked by brokenInvariant(), valid.ts; the number is what it returns):
//  INV-LB-1  each arena's blocks tile its reservation exactly: the chain from the head at the base
//            is linked both ways, contiguous, sizes are positive multiples of 512, and every block
//            carries the arena's id, stream and pool. Every live block record is in one chain, so
//            no two live blocks share a virtual byte.
//  INV-LB-2  an arena's free set holds exactly its blocks that are neither allocated nor pending,
//            ordered and heap-shaped; no two neighbours are both free.
//  INV-LB-3  touches[p] equals the number of allocated or pending blocks touching page p, and every
//            touched page has a chunk mapped.
//  INV-LB-4  each chunk pool's idle list holds exactly the pages of its arenas with a chunk and
//            no touch, linked both ways.
//  INV-LB-5  a chunk is mapped at exactly one page (no two pages share a handle), and each page's
//            mapping is the one the device holds, of its arena's page size, which is its pool's
//            chunk size; with INV-LB-1, no two live blocks share a physical byte.
//  INV-LB-6  reserved_bytes (per pool and in all) == the sum over arenas of mapped pages x page
//            size == the bytes of the chunks created and not released (chunkBytes; chunks counts
//            them) == the device's physical bytes.
//  INV-LB-7  allocation, allocated_bytes, active, active_bytes and requested_bytes equal their sums
//            over the blocks; segment == arenas; allocated <= active <= reserved; peaks >= current.
//  INV-LB-8  the reuse forecast's record of every page: releasedAt <= the clock, above 0 on every
//            idle page; idleGap >= 0 and below the clock.

import { Device, NO_HANDLE } from "../../device/device";
import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, newBlock, deleteBlock, bAddr, bSize, bEnd, bPrev, bNext, setAddr,
  setSize, setPrev, setNext, bSegment, bRequested, setRequested, hasFlag, setFlag,
  setTraceId as setBlockTraceId,
} from "../../memory/block-table";
import { BY_SIZE, setInsert, setErase, lowerBound, successor } from "../../memory/free-set";
import { splitFront, splitBack } from "../../memory/block-links";
import { AllocatorConfig, UNLIMITED } from "../config";
import { roundSize, isSmallSize, MIN_BLOCK_BYTES } from "../rounding";
import {
  STAT_ALLOCATION, STAT_SEGMENT, STAT_ACTIVE, STAT_ALLOCATED_BYTES, STAT_RESERVED_BYTES,
  STAT_ACTIVE_BYTES, STAT_REQUESTED_BYTES, NUM_OOMS, NUM_DEVICE_ALLOC, NUM_DEVICE_FREE,
  NUM_ALLOC_RETRIES,
} from "../stats";
import { Policy, NO_HANDLE_BLOCK } from "../policy";
import { expandableAddressSpace } from "../caching/caching";
import { SegmentLog, ACTION_SEGMENT_MAP, ACTION_SEGMENT_UNMAP } from "../../replay/segment-log";
import { Layout } from "../../replay/layout";
import { Arena, SMALL_PAGE_BYTES, NO_PAGE, pageKey, keyArena, keyPage } from "./arena";
import { ChunkPool } from "./chunk-pool";
import { noteRelease, noteTouchStart, victimPage } from "./reuse-forecast";
import { brokenLakebedInvariant, brokenLakebedLocalInvariant } from "./valid";
import { writeLakebedLayout } from "./layout-writer";
import {
  BROKEN, BROKEN_LAKEBED_UNTOUCH_PAST_END, BROKEN_LAKEBED_RELEASE_KEEPS_RESERVED, BROKEN_LAKEBED_BACK_OVERLAPS,
} from "../broken";

/** lakebed's own settings (the lakebed_* keys of the settings string), set before start(). */
export class LakebedConfig {
  /** see LakebedPolicy.slackPermille */
  slackPermille: i32 = 0;
  /** see LakebedPolicy.fitWindow */
  fitWindow: i32 = 1;
  /** page (and chunk) bytes of large-pool arenas (lakebed_large_page_mb), a multiple of 2 MiB */
  largePageBytes: u64 = 20 << 20;
}
export const lakebedConf = new LakebedConfig();

/** The Wasm export that sets lakebedConf (largePageMiB: even, 2 or more; the caller checks). */
export function setLakebedConf(slackPermille: i32, fitWindow: i32, largePageMiB: i32): void {
  lakebedConf.slackPermille = slackPermille;
  lakebedConf.fitWindow = max(fitWindow, 1);
  lakebedConf.largePageBytes = <u64>max(largePageMiB >> 1, 1) * SMALL_PAGE_BYTES;
}

export class LakebedPolicy extends Policy {
  conf: AllocatorConfig;
  arenas: Array<Arena> = new Array<Arena>();
  /** stream * 2 + (small ? 1 : 0) -> arena id, -1 when the arena does not exist yet */
  arenaOf: Array<i32> = new Array<i32>();
  addressSpaceBytes: u64;
  /** the chunk pools: pools[0] backs the small arenas, the last one the large arenas (the same one when the page sizes are equal) */
  pools: Array<ChunkPool> = new Array<ChunkPool>();
  /** chunks created and not released, in all pools, and their bytes */
  chunks: i32 = 0;
  chunkBytes: u64 = 0;
  /** chunks taken from an idle page for another page (an unmap and a map each) */
  chunkMoves: i64 = 0;
  /** mallocs so far: the time of the reuse forecast (reuse-forecast.ts) */
  clock: i64 = 0;
  /**
   * idle chunks a pool may keep beyond the most pages of it ever touched, per mille of that most
   * (lakebed_slack_permille): a new chunk is created instead of moving an idle one while
   * chunks < touchedPeak x (1 + slack). 0: move whenever a page is idle.
   */
  slackPermille: i32 = 0;
  /**
   * how many fitting free ranges, smallest first, placement weighs (lakebed_fit_window): it takes
   * the one whose pages need the fewest chunks (pages nobody touches and no chunk backs), the
   * smallest on ties. 1: plain best fit.
   */
  fitWindow: i32 = 1;
  /** chunks gathered for the block being placed */
  private gathered: StaticArray<i32> = new StaticArray<i32>(64);
  // the stream of the segment being adopted (a trace recorded mid-run)
  private adoptStream: i32 = 0;

  constructor(device: Device, log: SegmentLog, conf: AllocatorConfig) {
    super(device, log);
    this.conf = conf;
    this.addressSpaceBytes = expandableAddressSpace(device.totalBytes());
    this.slackPermille = lakebedConf.slackPermille;
    this.fitWindow = lakebedConf.fitWindow;
    this.pools.push(new ChunkPool(0, SMALL_PAGE_BYTES));
    if (lakebedConf.largePageBytes != SMALL_PAGE_BYTES) this.pools.push(new ChunkPool(1, lakebedConf.largePageBytes));
  }

  /** The chunk pool that backs arena a. */
  @inline pool(a: Arena): ChunkPool {
    return unchecked(this.pools[a.poolId]);
  }

  /** Idle pages in all pools. */
  idlePages(): i32 {
    let n = 0;
    for (let i = 0; i < this.pools.length; i++) n += unchecked(this.pools[i]).idleCount;
    return n;
  }

  @inline arena(id: i32): Arena {
    return unchecked(this.arenas[id]);
  }

  /** The arena of a stream and pool, reserved on first use; null when no address space is left. */
  arenaFor(stream: i32, small: bool): Arena | null {
    const slot = stream * 2 + (small ? 1 : 0);
    while (this.arenaOf.length <= slot) this.arenaOf.push(-1);
    const id = unchecked(this.arenaOf[slot]);
    if (id >= 0) return this.arena(id);
    const pool = this.poolFor(small);
    const a = new Arena(this.arenas.length, stream, small, this.addressSpaceBytes, pool.chunkBytes, pool.id);
    if (!a.reserve(this.device)) return null;
    const b = newBlock(a.base, a.vaBytes(), stream, small, a.id);
    a.head = b;
    a.freeRoot = setInsert(BY_SIZE, a.freeRoot, b);
    this.arenas.push(a);
    unchecked((this.arenaOf[slot] = a.id));
    this.stats.increase(STAT_SEGMENT, small, 1);
    return a;
  }

  // ---- malloc -------------------------------------------------------------------------------

  malloc(requestBytes: u64, stream: i32): i32 {
    this.clock++;
    const size = roundSize(this.conf, requestBytes);
    let h = this.place(size, requestBytes, stream);
    if (h == NO_HANDLE_BLOCK && this.pendingBlocks > 0) {
      // Out of chunks while frees still wait on other streams (record_stream): synchronize, as
      // PyTorch's release_cached_blocks does before its last attempt, so their pages turn idle.
      this.stats.count(NUM_ALLOC_RETRIES);
      this.completePendingFrees();
      h = this.place(size, requestBytes, stream);
    }
    if (h == NO_HANDLE_BLOCK && this.idleElsewhere(this.poolFor(isSmallSize(size)))) {
      // Out of memory while the other pool holds idle chunks, which cannot back this arena's
      // pages (they are another size): release them, as PyTorch's release_cached_blocks frees
      // every cached segment before its last attempt, and try again.
      this.stats.count(NUM_ALLOC_RETRIES);
      this.releaseIdleElsewhere(this.poolFor(isSmallSize(size)));
      h = this.place(size, requestBytes, stream);
    }
    if (h == NO_HANDLE_BLOCK) this.stats.count(NUM_OOMS);
    return h;
  }

  /** The chunk pool of small or large arenas. */
  @inline poolFor(small: bool): ChunkPool {
    return small ? unchecked(this.pools[0]) : unchecked(this.pools[this.pools.length - 1]);
  }

  /** Whether a pool other than `pool` has idle chunks. */
  private idleElsewhere(pool: ChunkPool): bool {
    for (let i = 0; i < this.pools.length; i++) {
      const other = unchecked(this.pools[i]);
      if (other !== pool && other.idleCount > 0) return true;
    }
    return false;
  }

  /** Unmaps and releases the idle chunks of every pool but `pool` (one unmap per run of idle pages). */
  private releaseIdleElsewhere(pool: ChunkPool): void {
    for (let i = 0; i < this.arenas.length; i++) {
      const a = this.arena(i);
      if (a.poolId != pool.id) this.releaseIdlePages(a);
    }
  }

  /** Best fit for `size` bytes (a multiple of 512) in the stream's arena, backed by chunks; NO_HANDLE_BLOCK when no chunk can be had. */
  place(size: u64, requestBytes: u64, stream: i32): i32 {
    const small = isSmallSize(size);
    const maybe = this.arenaFor(stream, small);
    if (maybe == null) return NO_HANDLE_BLOCK;
    const a = changetype<Arena>(maybe);
    const found = this.chooseFit(a, stream, size);
    if (found == NO_BLOCK) return NO_HANDLE_BLOCK;
    a.freeRoot = setErase(BY_SIZE, a.freeRoot, found);
    let block = found;
    const at = this.placeIn(a, found, size);
    if (at != bAddr(found)) {
      // the back becomes the block; the remainder keeps the old record and stays free
      const from = BROKEN == BROKEN_LAKEBED_BACK_OVERLAPS ? at + MIN_BLOCK_BYTES : at; // broken.ts
      block = newBlock(from, size, stream, small, a.id);
      splitBack(found, block, from);
      a.freeRoot = setInsert(BY_SIZE, a.freeRoot, found);
    } else if (bSize(found) - size >= MIN_BLOCK_BYTES) {
      // the front becomes the block; the remainder keeps the old record and stays free
      block = newBlock(bAddr(found), size, stream, small, a.id);
      splitFront(found, block, size);
      if (bPrev(block) == NO_BLOCK) a.head = block;
      a.freeRoot = setInsert(BY_SIZE, a.freeRoot, found);
    }
    if (!this.backPages(a, bAddr(block), bSize(block))) {
      a.cacheFree(block);
      return NO_HANDLE_BLOCK;
    }
    setFlag(block, FLAG_ALLOCATED, true);
    setRequested(block, requestBytes);
    const blockSize = bSize(block);
    this.stats.increase(STAT_ALLOCATION, small, 1);
    this.stats.increase(STAT_ALLOCATED_BYTES, small, blockSize);
    this.stats.increase(STAT_ACTIVE, small, 1);
    this.stats.increase(STAT_ACTIVE_BYTES, small, blockSize);
    this.stats.increase(STAT_REQUESTED_BYTES, small, requestBytes);
    return block;
  }

  /** Among the fitWindow smallest free ranges that hold `size`, the one needing the fewest chunks. */
  chooseFit(a: Arena, stream: i32, size: u64): i32 {
    let best = lowerBound(BY_SIZE, a.freeRoot, stream, size, 0);
    if (best == NO_BLOCK || this.fitWindow <= 1) return best;
    let bestMissing = this.missingChunks(a, bAddr(best), size);
    let it = successor(BY_SIZE, a.freeRoot, best);
    for (let k = 1; k < this.fitWindow && it != NO_BLOCK && bestMissing > 0; k++) {
      const missing = this.missingChunks(a, bAddr(it), size);
      if (missing < bestMissing) {
        best = it;
        bestMissing = missing;
      }
      it = successor(BY_SIZE, a.freeRoot, it);
    }
    return best;
  }

  /**
   * Where in free block `free` a block of `size` bytes goes: its back when the free block is split
   * and its back needs fewer new chunks, or as many and fewer newly touched pages; else its front.
   * The free block at the arena's end runs to the end of the reservation, so it is split at its
   * front (its back would touch the far end of the range).
   */
  placeIn(a: Arena, free: i32, size: u64): u64 {
    const start = bAddr(free);
    if (bSize(free) - size < MIN_BLOCK_BYTES || bNext(free) == NO_BLOCK) return start;
    const back = bEnd(free) - size;
    return this.backingCost(a, back, size) < this.backingCost(a, start, size) ? back : start;
  }

  /** What backing [addr, addr + bytes) costs: pages needing a chunk (high 32 bits), then pages newly touched. */
  private backingCost(a: Arena, addr: u64, bytes: u64): i64 {
    const end = a.endPage(addr, bytes);
    let missing: i64 = 0;
    let untouched: i64 = 0;
    for (let p = a.pageOf(addr); p < end; p++) {
      if (a.touch(p) != 0) continue;
      untouched++;
      if (a.handle(p) == 0) missing++;
    }
    return (missing << 32) | untouched;
  }

  /** Pages of [addr, addr + bytes) that no block touches and no chunk backs. */
  missingChunks(a: Arena, addr: u64, bytes: u64): i32 {
    const end = a.endPage(addr, bytes);
    let missing = 0;
    for (let p = a.pageOf(addr); p < end; p++) if (a.touch(p) == 0 && a.handle(p) == 0) missing++;
    return missing;
  }

  /**
   * Touches every page of [addr, addr + bytes) and gives each page that has no chunk one (an idle
   * page's of the arena's pool, gatherChunks, else a new one); sets access once per run of newly
   * mapped pages. False when no chunk could be had: then the touches are undone (pages mapped
   * meanwhile stay, idle).
   */
  backPages(a: Arena, addr: u64, bytes: u64): bool {
    const pool = this.pool(a);
    const first = a.pageOf(addr);
    const end = a.endPage(addr, bytes);
    let missing = 0;
    a.ensurePages(end);
    // first claim the idle pages of this range, so that no chunk is taken from under it
    for (let p = first; p < end; p++) {
      const t = a.touch(p);
      unchecked((a.touches[p] = t + 1));
      if (t == 0) {
        pool.touchedPages++;
        noteTouchStart(a, p, this.clock);
        if (a.handle(p) != 0) this.idleRemove(pool, a, p);
        else missing++;
      }
    }
    if (missing > 0 && !this.canGather(pool, missing)) {
      // It cannot be served: refuse before any driver call, as PyTorch checks its limit before
      // it allocates, so that a request that fails never grows the reservation.
      this.unbackPages(a, addr, bytes);
      return false;
    }
    if (pool.touchedPages > pool.touchedPeak) pool.touchedPeak = pool.touchedPages;
    if (missing == 0) return true;
    const got = this.gatherChunks(pool, a.small, missing);
    // map what was gathered, in page order; set access once per run of newly mapped pages
    let used = 0;
    let run = -1;
    let p = first;
    let refused = false;
    for (; p < end && used < got; p++) {
      if (a.handle(p) != 0) {
        if (run >= 0 && !this.setAccessRun(a, run, p)) {
          refused = true;
          break;
        }
        run = -1;
        continue;
      }
      const h = unchecked(this.gathered[used++]);
      if (!a.mapPage(this.device, p, h)) {
        // the device refused the map: this chunk and the run mapped without access go back
        this.releaseChunk(pool, a.small, h);
        if (run >= 0) this.dropRun(a, run, p);
        refused = true;
        break;
      }
      this.stats.count(NUM_DEVICE_ALLOC);
      if (run < 0) run = p;
    }
    if (!refused && run >= 0 && !this.setAccessRun(a, run, p)) refused = true;
    if (!refused && got == missing) return true;
    // out of memory: chunks gathered but not placed are released, the touches undone (pages
    // mapped with access before the failure stay, idle)
    while (used < got) this.releaseChunk(pool, a.small, unchecked(this.gathered[used++]));
    this.unbackPages(a, addr, bytes);
    return false;
  }

  /**
   * Whether `want` chunks of the pool can be had: its idle pages' chunks, and new ones within the
   * memory fraction and the device's free memory. A device that runs out anyway (another process
   * took memory) still answers memCreate with an OOM, which backPages undoes.
   */
  private canGather(pool: ChunkPool, want: i32): bool {
    const fresh = <i64>want - <i64>pool.idleCount;
    if (fresh <= 0) return true;
    const bytes = <u64>fresh * pool.chunkBytes;
    return this.withinFraction(this.chunkBytes, bytes) && this.device.canAllocate(bytes);
  }

  /** Releases a chunk of the pool that backs no page (its reserved bytes counted in the small or large pool's stats). */
  private releaseChunk(pool: ChunkPool, small: bool, handle: i32): void {
    this.device.memRelease(handle);
    pool.chunks--;
    this.chunks--;
    this.chunkBytes -= pool.chunkBytes;
    this.stats.decrease(STAT_RESERVED_BYTES, small, pool.chunkBytes);
    this.stats.count(NUM_DEVICE_FREE);
  }

  /** Unmaps pages [from, to) of `a`, mapped but never given access, and releases their chunks. */
  private dropRun(a: Arena, from: i32, to: i32): void {
    this.device.unmap(a.pageAddress(from), <u64>(to - from) * a.pageBytes);
    const pool = this.pool(a);
    for (let p = from; p < to; p++) {
      const h = a.handle(p);
      unchecked((a.handles[p] = 0));
      a.mappedPages--;
      this.releaseChunk(pool, a.small, h);
    }
  }

  /**
   * Gathers up to `want` chunks of the pool into `gathered` for pages of a small or large arena:
   * chunks of its idle pages first, the one forecast to be touched last first (reuse-forecast.ts),
   * a run of idle pages that are neighbours in the list and in the arena unmapped with one call;
   * then new ones. Returns how many it got.
   */
  gatherChunks(pool: ChunkPool, small: bool, want: i32): i32 {
    if (this.gathered.length < want) this.gathered = new StaticArray<i32>(max(want, this.gathered.length * 2));
    let got = 0;
    while (got < want) {
      const budget = <i64>pool.touchedPeak + (<i64>pool.touchedPeak * this.slackPermille) / 1000;
      const canCreate = this.withinFraction(this.chunkBytes, pool.chunkBytes);
      if (pool.idleHead != NO_PAGE && (<i64>pool.chunks >= budget || !canCreate)) {
        got = this.moveIdleRun(pool, small, want, got);
        continue;
      }
      const h = canCreate ? this.device.memCreate(pool.chunkBytes) : NO_HANDLE;
      if (h == NO_HANDLE) {
        if (pool.idleHead == NO_PAGE) break;
        got = this.moveIdleRun(pool, small, want, got);
        continue;
      }
      pool.chunks++;
      this.chunks++;
      this.chunkBytes += pool.chunkBytes;
      this.stats.increase(STAT_RESERVED_BYTES, small, pool.chunkBytes);
      unchecked((this.gathered[got++] = h));
    }
    return got;
  }

  /**
   * Unmaps the pool's victim page (reuse-forecast.ts) and the idle pages right after it in the
   * arena that follow it in the list too, idled with it (at most want - got pages), with one call;
   * their chunks go to `gathered`, for a small or large arena. Returns the new count.
   */
  moveIdleRun(pool: ChunkPool, small: bool, want: i32, got: i32): i32 {
    const victim = victimPage(pool, this.arenas, this.clock);
    const from = this.arena(keyArena(victim));
    const first = keyPage(victim);
    let end = first + 1;
    while (got + (end - first) < want && end < from.highPage && from.handle(end) != 0 && from.touch(end) == 0 &&
           unchecked(from.idlePrev[end]) == pageKey(from.id, end - 1)) {
      end++;
    }
    const va = from.pageAddress(first);
    const bytes = <u64>(end - first) * from.pageBytes;
    this.device.unmap(va, bytes);
    this.log.record(ACTION_SEGMENT_UNMAP, va, bytes);
    this.stats.count(NUM_DEVICE_FREE);
    for (let p = first; p < end; p++) {
      this.idleRemove(pool, from, p);
      unchecked((this.gathered[got++] = from.handle(p)));
      unchecked((from.handles[p] = 0));
      from.mappedPages--;
    }
    if (from.small != small) {
      this.stats.decrease(STAT_RESERVED_BYTES, from.small, bytes);
      this.stats.increase(STAT_RESERVED_BYTES, small, bytes);
    }
    this.chunkMoves += end - first;
    return got;
  }

  /** Sets access on pages [from, to); when the device refuses, the run is dropped (false). */
  private setAccessRun(a: Arena, from: i32, to: i32): bool {
    const va = a.pageAddress(from);
    const bytes = <u64>(to - from) * a.pageBytes;
    if (!this.device.setAccess(va, bytes)) {
      this.dropRun(a, from, to);
      return false;
    }
    this.log.record(ACTION_SEGMENT_MAP, va, bytes);
    return true;
  }

  /** Drops the touches of [addr, addr + bytes); mapped pages left untouched become idle. */
  unbackPages(a: Arena, addr: u64, bytes: u64): void {
    const pool = this.pool(a);
    const end = BROKEN == BROKEN_LAKEBED_UNTOUCH_PAST_END ? min(a.endPage(addr, bytes) + 1, a.capacity) : a.endPage(addr, bytes); // broken.ts
    for (let p = a.pageOf(addr); p < end; p++) {
      const t = a.touch(p) - 1;
      unchecked((a.touches[p] = t));
      if (t == 0) {
        pool.touchedPages--;
        noteRelease(a, p, this.clock);
        if (a.handle(p) != 0) this.idleAppend(pool, a, p);
      }
    }
  }

  // ---- the idle lists -----------------------------------------------------------------------

  idleAppend(pool: ChunkPool, a: Arena, page: i32): void {
    const key = pageKey(a.id, page);
    unchecked((a.idlePrev[page] = pool.idleTail));
    unchecked((a.idleNext[page] = NO_PAGE));
    if (pool.idleTail != NO_PAGE) {
      const t = this.arena(keyArena(pool.idleTail));
      unchecked((t.idleNext[keyPage(pool.idleTail)] = key));
    } else {
      pool.idleHead = key;
    }
    pool.idleTail = key;
    pool.idleCount++;
  }

  idleRemove(pool: ChunkPool, a: Arena, page: i32): void {
    const prev = unchecked(a.idlePrev[page]);
    const next = unchecked(a.idleNext[page]);
    if (prev != NO_PAGE) unchecked((this.arena(keyArena(prev)).idleNext[keyPage(prev)] = next));
    else pool.idleHead = next;
    if (next != NO_PAGE) unchecked((this.arena(keyArena(next)).idlePrev[keyPage(next)] = prev));
    else pool.idleTail = prev;
    pool.idleCount--;
  }

  // ---- free ---------------------------------------------------------------------------------

  freeRequest(handle: i32): void {
    assert(hasFlag(handle, FLAG_ALLOCATED), "free of a block that is not allocated");
    const small = this.arena(bSegment(handle)).small;
    setFlag(handle, FLAG_ALLOCATED, false);
    this.stats.decrease(STAT_ALLOCATION, small, 1);
    this.stats.decrease(STAT_ALLOCATED_BYTES, small, bSize(handle));
    setFlag(handle, FLAG_PENDING, true);
    this.pendingBlocks++;
  }

  freeComplete(handle: i32): void {
    assert(hasFlag(handle, FLAG_PENDING), "free completion of a block that is not pending");
    setFlag(handle, FLAG_PENDING, false);
    this.pendingBlocks--;
    const a = this.arena(bSegment(handle));
    this.stats.decrease(STAT_ACTIVE, a.small, 1);
    this.stats.decrease(STAT_ACTIVE_BYTES, a.small, bSize(handle));
    this.stats.decrease(STAT_REQUESTED_BYTES, a.small, bRequested(handle));
    setBlockTraceId(handle, -1);
    this.unbackPages(a, bAddr(handle), bSize(handle));
    a.cacheFree(handle);
  }

  /**
   * torch.cuda.empty_cache(): completes pending frees (a full synchronization), then unmaps every
   * idle page and releases its chunk, one unmap per run of idle pages.
   */
  emptyCache(): void {
    this.completePendingFrees();
    for (let i = 0; i < this.arenas.length; i++) this.releaseIdlePages(this.arena(i));
  }

  /** Unmaps every idle page of arena a and releases its chunk, one unmap per run of idle pages. */
  private releaseIdlePages(a: Arena): void {
    let run = -1;
    for (let p = 0; p <= a.highPage; p++) {
      const idle = p < a.highPage && a.handle(p) != 0 && a.touch(p) == 0;
      if (idle) {
        if (run < 0) run = p;
        continue;
      }
      if (run >= 0) this.releaseRun(a, run, p);
      run = -1;
    }
  }

  private releaseRun(a: Arena, from: i32, to: i32): void {
    const pool = this.pool(a);
    const va = a.pageAddress(from);
    const bytes = <u64>(to - from) * a.pageBytes;
    this.device.unmap(va, bytes);
    this.log.record(ACTION_SEGMENT_UNMAP, va, bytes);
    for (let p = from; p < to; p++) {
      this.idleRemove(pool, a, p);
      this.device.memRelease(a.handle(p));
      unchecked((a.handles[p] = 0));
      a.mappedPages--;
      pool.chunks--;
      this.chunks--;
      this.chunkBytes -= pool.chunkBytes;
      if (BROKEN != BROKEN_LAKEBED_RELEASE_KEEPS_RESERVED) this.stats.decrease(STAT_RESERVED_BYTES, a.small, pool.chunkBytes); // broken.ts
      this.stats.count(NUM_DEVICE_FREE);
    }
  }

  /**
   * Idle pages of the request's own pool are reused before any chunk is released; a malloc gives
   * memory back only when its chunks cannot be had and the other pool holds idle ones (malloc).
   */
  mallocWouldRelease(requestBytes: u64, stream: i32): bool {
    const size = roundSize(this.conf, requestBytes);
    const small = isSmallSize(size);
    const pool = this.poolFor(small);
    if (!this.idleElsewhere(pool)) return false;
    const slot = stream * 2 + (small ? 1 : 0);
    const id = slot < this.arenaOf.length ? unchecked(this.arenaOf[slot]) : -1;
    let missing: i32;
    if (id < 0) {
      // a new arena places the block at its base
      missing = <i32>((size + pool.chunkBytes - 1) / pool.chunkBytes);
    } else {
      const a = this.arena(id);
      const b = this.chooseFit(a, stream, size);
      if (b == NO_BLOCK) return false;
      missing = this.missingChunks(a, this.placeIn(a, b, size), size);
    }
    return missing > 0 && !this.canGather(pool, missing);
  }

  // ---- the rest of the Policy interface ------------------------------------------------------

  brokenInvariant(): i32 {
    return brokenLakebedInvariant(this);
  }

  brokenLocalInvariant(): i32 {
    return brokenLakebedLocalInvariant(this);
  }

  writeLayout(out: Layout): void {
    writeLakebedLayout(this, out);
  }

  // A trace recorded mid-run: the live blocks are placed afresh, in the order the snapshot lists
  // them (ascending address), as if allocated then; cached blocks and segment shapes are not kept,
  // since lakebed would not have made them.
  adoptSegment(address: u64, stream: i32, small: bool, expandable: bool): void {
    this.adoptStream = stream;
  }

  adoptBlock(address: u64, size: u64, requested: u64, state: u8, traceId: i32): i32 {
    return this.adoptAfresh(requested, state, traceId, this.adoptStream);
  }

  adoptDone(): void {}

  counter(i: i32): f64 {
    switch (i) {
      case 0: return <f64>this.chunkMoves;
      case 1: return <f64>this.chunks;
      case 2: {
        let peak = 0;
        for (let i = 0; i < this.pools.length; i++) peak += unchecked(this.pools[i]).touchedPeak;
        return <f64>peak;
      }
    }
    return 0;
  }
}
