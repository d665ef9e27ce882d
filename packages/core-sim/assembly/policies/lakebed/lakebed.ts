// lakebed: our own policy. Every (stream, small/large) pair gets one virtual arena (a reservation
// as large as expandable segments take) packed tightly: requests are rounded to 512 bytes and
// placed best fit (smallest free range that holds them, lowest address on ties), as PyTorch places
// blocks inside a segment, but the arena never ends and never splits into segments. Within that
// range a block goes to whichever end needs fewer new chunks, then fewer newly touched pages (the
// front, as PyTorch, on ties): at the back its last page may be one the next block already backs,
// so that one page fewer is touched and backed. Physical memory is fungible chunks of the arena's
// page size (chunk-pool.ts): 2 MiB for small arenas and lakebed_large_page_mb, 20 MiB by default,
// for large ones. A page of an arena holds a chunk while a live block touches it. When a block is
// freed, the pages it alone touched let their chunks go free but stay mapped (no driver call);
// when a new block touches a page, the page takes back the chunk it maps if that chunk is still
// free (no driver call), else it gets a free chunk of the same pool (a map here; the chunk stays
// mapped at its old pages too, as aliases, chunk-pool.ts), the one whose next use is forecast
// furthest away (reuse-forecast.ts), and a new chunk only when none is free; a new chunk that would
// raise the peak reserved is created only after the other pool's free chunks are released
// (releaseOthersFree: a 20 MiB chunk cannot back a 2 MiB page nor the reverse). So physical memory
// stays within one page per hole edge of the live bytes, and a training loop whose steps touch the
// same pages in the same order soon makes no driver call at all: each page finds its chunk where
// it left it. Only a page whose chunk another page holds is unmapped, before it is backed again.
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
// Streams: a chunk is mapped at pages of one arena only, that is of one stream, and a free chunk
// serves another page of that stream as PyTorch serves a freed block to its own stream, in stream
// order. It goes to another arena only after an unmap of each of its pages, which on a GPU waits
// for the work queued there (as PyTorch's expandable segments synchronize before unmapping). The
// policy counts chunks handed to new pages (chunkMoves) and pages unmapped because their chunk was
// in use elsewhere (aliasUnmaps).
//
// Invariants (checked by brokenInvariant(), valid.ts; the number is what it returns):
//  INV-LB-1  each arena's blocks tile its reservation exactly: the chain from the head at the base
//            is linked both ways, contiguous, sizes are positive multiples of 512, and every block
//            carries the arena's id, stream and pool. Every live block record is in one chain, so
//            no two live blocks share a virtual byte.
//  INV-LB-2  an arena's free set holds exactly its blocks that are neither allocated nor pending,
//            ordered and heap-shaped; no two neighbours are both free.
//  INV-LB-3  touches[p] equals the number of allocated or pending blocks touching page p, and every
//            touched page maps a chunk and is its owner; a page that maps a chunk it does not own
//            is untouched.
//  INV-LB-4  each chunk pool's free list holds exactly its chunks that no page owns, linked both
//            ways (freeCount counts them).
//  INV-LB-5  each page's mapping is the one the device holds (its chunk's handle), of its arena's
//            page size, which is its pool's chunk size; the device holds no other mapping; no two
//            slots hold one handle. With INV-LB-1 and 3 (one owner per chunk, the only touched
//            page mapping it), no two live blocks share a physical byte.
//  INV-LB-6  reserved_bytes (per small/large pool and in all) == the chunks created and not
//            released x their pool's chunk size, each counted in the pool of the arena that maps
//            it == chunkBytes (chunks counts them) == the device's physical bytes; chunkBytes <=
//            the stats' peak reserved <= peakChunkBytes.
//  INV-LB-7  allocation, allocated_bytes, active, active_bytes and requested_bytes equal their sums
//            over the blocks; segment == arenas; allocated <= active <= reserved; peaks >= current.
//  INV-LB-8  the reuse forecast's record of every page: releasedAt <= the clock, above 0 on every
//            mapped page nobody touches; idleGap >= 0 and below the clock.
//  INV-LB-9  each chunk's aliases: the pages mapping it, all of one arena (the slot's arena), linked
//            both ways from the slot's aliasHead, as many as aliasCount (at least one); its owner,
//            if any, is one of them; every mapped page is in the list of the chunk it maps.

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
import { Arena, SMALL_PAGE_BYTES, NO_PAGE, UNMAPPED } from "./arena";
import { ChunkPool, NO_CHUNK, NO_OWNER } from "./chunk-pool";
import { linkAlias, unlinkAlias } from "./aliases";
import { noteRelease, noteTouchStart, victimChunk } from "./reuse-forecast";
import { brokenLakebedInvariant, brokenLakebedLocalInvariant } from "./valid";
import { writeLakebedLayout } from "./layout-writer";
import {
  BROKEN, BROKEN_LAKEBED_UNTOUCH_PAST_END, BROKEN_LAKEBED_RELEASE_KEEPS_RESERVED, BROKEN_LAKEBED_BACK_OVERLAPS,
  BROKEN_LAKEBED_TAKES_HELD_CHUNK,
} from "../broken";

/** lakebed's own settings (the lakebed_* keys of the settings string), set before start(). */
export class LakebedConfig {
  /** see LakebedPolicy.slackPermille */
  slackPermille: i32 = 0;
  /** see LakebedPolicy.fitWindow */
  fitWindow: i32 = 4;
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
  /**
   * The most chunkBytes has been: the policy's own peak reserved, which a new chunk raises only
   * when the other pool has no free chunk left to release (releaseOthersFree). Kept apart from the
   * stats' peak, which reset_peak_memory_stats may lower, so that what the policy does never
   * depends on when the job resets its statistics.
   */
  peakChunkBytes: u64 = 0;
  /** free chunks handed to a page that did not map them (a map each, and unmaps when they leave an arena) */
  chunkMoves: i64 = 0;
  /** pages unmapped because the chunk they mapped was in use at another page when they were touched */
  aliasUnmaps: i64 = 0;
  /** mallocs so far: the time of the reuse forecast (reuse-forecast.ts) */
  clock: i64 = 0;
  /**
   * free chunks a pool may keep beyond the most pages of it ever touched, per mille of that most
   * (lakebed_slack_permille): a new chunk is created instead of handing over a free one while
   * chunks < touchedPeak x (1 + slack). 0: hand one over whenever one is free.
   */
  slackPermille: i32 = 0;
  /**
   * how many fitting free ranges, smallest first, placement weighs (lakebed_fit_window): it takes
   * the one whose pages need the fewest chunks (pages nobody touches that map no free chunk), the
   * smallest on ties. 1: plain best fit. 4 by default: with aliases a range whose pages still map
   * their free chunks is backed with no driver call, and of the 39 single-stream traces
   * (docs/policies.md) gpt2_ckpt's allocator time drops from 1.58 to 1.28 x expandable segments',
   * the geometric mean of reserved / allocated from 1.0425 to 1.0422.
   */
  fitWindow: i32 = 4;
  /** chunks (pool slots) gathered for the block being placed */
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

  /** Free chunks in all pools. */
  freeChunks(): i32 {
    let n = 0;
    for (let i = 0; i < this.pools.length; i++) n += unchecked(this.pools[i]).freeCount;
    return n;
  }

  /** Whether page p of arena a maps a chunk no touched page holds (it is backed again with no driver call). */
  @inline mapsFreeChunk(a: Arena, p: i32): bool {
    const s = a.chunkAt(p);
    return s != UNMAPPED && this.pool(a).ownerOf(s) == NO_OWNER;
  }

  /** Whether page p of arena a holds the chunk it maps: p owns it, or it is free and p heads its aliases (the page the layout shows it at). */
  holdsChunk(a: Arena, p: i32): bool {
    const s = a.chunkAt(p);
    if (s == UNMAPPED) return false;
    const pool = this.pool(a);
    const owner = pool.ownerOf(s);
    return owner == p || (owner == NO_OWNER && unchecked(pool.aliasHead[s]) == p);
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
      // Out of memory while the other pool holds free chunks, which cannot back this arena's
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

  /** Whether a pool other than `pool` has free chunks. */
  private idleElsewhere(pool: ChunkPool): bool {
    for (let i = 0; i < this.pools.length; i++) {
      const other = unchecked(this.pools[i]);
      if (other !== pool && other.freeCount > 0) return true;
    }
    return false;
  }

  /** Unmaps and releases the free chunks of every pool but `pool` (one unmap per run of their pages). */
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
      if (!this.mapsFreeChunk(a, p)) missing++;
    }
    return (missing << 32) | untouched;
  }

  /** Pages of [addr, addr + bytes) that no block touches and that map no free chunk: each needs one. */
  @inline missingChunks(a: Arena, addr: u64, bytes: u64): i32 {
    return <i32>(this.backingCost(a, addr, bytes) >> 32);
  }

  /**
   * Touches every page of [addr, addr + bytes) and backs each page that holds no chunk: a page
   * mapping a free chunk takes it back (no driver call); any other gets a free chunk of the arena's
   * pool (gatherChunks), else a new one, after unmapping the chunk another page holds, if it
   * mapped one. Sets access once per run of newly mapped pages. False when no chunk could be had:
   * then the touches are undone (pages mapped meanwhile stay, their chunks free).
   */
  backPages(a: Arena, addr: u64, bytes: u64): bool {
    const pool = this.pool(a);
    const first = a.pageOf(addr);
    const end = a.endPage(addr, bytes);
    let missing = 0;
    a.ensurePages(end);
    // first claim the free chunks this range maps, so that none is taken from under it
    for (let p = first; p < end; p++) {
      const t = a.touch(p);
      unchecked((a.touches[p] = t + 1));
      if (t == 0) {
        pool.touchedPages++;
        noteTouchStart(a, p, this.clock);
        if (this.mapsFreeChunk(a, p)) this.claim(pool, a.chunkAt(p), p);
        else if (BROKEN == BROKEN_LAKEBED_TAKES_HELD_CHUNK && a.chunkAt(p) != UNMAPPED) unchecked((pool.owner[a.chunkAt(p)] = p)); // broken.ts
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
    const got = this.gatherChunks(pool, a, missing);
    // map what was gathered, in page order; set access once per run of newly mapped pages
    let used = 0;
    let run = -1;
    let p = first;
    let refused = false;
    for (; p < end && used < got; p++) {
      const mapped = a.chunkAt(p);
      if (mapped != UNMAPPED && pool.ownerOf(mapped) == p) {
        if (run >= 0 && !this.setAccessRun(a, run, p)) {
          refused = true;
          break;
        }
        run = -1;
        continue;
      }
      // the chunk this page maps is another page's now: unmap it here first
      if (mapped != UNMAPPED) this.unmapAlias(pool, a, p);
      const s = unchecked(this.gathered[used++]);
      if (!this.device.map(a.pageAddress(p), a.pageBytes, pool.handleOf(s))) {
        // the device refused the map: this chunk and the run mapped without access go back
        this.returnChunk(pool, a.small, s);
        if (run >= 0) this.dropRun(a, run, p);
        refused = true;
        break;
      }
      linkAlias(pool, a, p, s);
      unchecked((pool.owner[s] = p));
      this.stats.count(NUM_DEVICE_ALLOC);
      if (run < 0) run = p;
    }
    if (!refused && run >= 0 && !this.setAccessRun(a, run, p)) refused = true;
    if (!refused && got == missing) return true;
    // out of memory: chunks gathered but not placed go back (free, or released when mapped
    // nowhere), the touches are undone (pages mapped with access before the failure stay, free)
    while (used < got) this.returnChunk(pool, a.small, unchecked(this.gathered[used++]));
    this.unbackPages(a, addr, bytes);
    return false;
  }

  /** Page p, touched, takes back free chunk s that it maps. */
  @inline private claim(pool: ChunkPool, s: i32, p: i32): void {
    pool.freeRemove(s);
    unchecked((pool.owner[s] = p));
  }

  /**
   * Whether `want` chunks of the pool can be had: its free chunks, and new ones within the
   * memory fraction and the device's free memory. A device that runs out anyway (another process
   * took memory) still answers memCreate with an OOM, which backPages undoes.
   */
  private canGather(pool: ChunkPool, want: i32): bool {
    const fresh = <i64>want - <i64>pool.freeCount;
    if (fresh <= 0) return true;
    const bytes = <u64>fresh * pool.chunkBytes;
    return this.withinFraction(this.chunkBytes, bytes) && this.device.canAllocate(bytes);
  }

  /** Releases chunk s of the pool, mapped nowhere (its reserved bytes counted in the small or large pool's stats). */
  private releaseChunk(pool: ChunkPool, small: bool, s: i32): void {
    this.device.memRelease(pool.handleOf(s));
    pool.dropSlot(s);
    this.chunks--;
    this.chunkBytes -= pool.chunkBytes;
    if (BROKEN != BROKEN_LAKEBED_RELEASE_KEEPS_RESERVED) this.stats.decrease(STAT_RESERVED_BYTES, small, pool.chunkBytes); // broken.ts
    this.stats.count(NUM_DEVICE_FREE);
  }

  /** A gathered chunk that no page took: back to the free list while pages map it, else released. */
  private returnChunk(pool: ChunkPool, small: bool, s: i32): void {
    unchecked((pool.owner[s] = NO_OWNER));
    if (unchecked(pool.aliasCount[s]) > 0) pool.freeAppend(s);
    else this.releaseChunk(pool, small, s);
  }

  /** Unmaps pages [from, to) of `a`, mapped but never given access; their chunks go back (returnChunk). */
  private dropRun(a: Arena, from: i32, to: i32): void {
    this.device.unmap(a.pageAddress(from), <u64>(to - from) * a.pageBytes);
    const pool = this.pool(a);
    for (let p = from; p < to; p++) this.returnChunk(pool, a.small, unlinkAlias(pool, a, p));
  }

  /** Unmaps page p of `a`, whose chunk another page holds (a driver call, no memory freed). */
  private unmapAlias(pool: ChunkPool, a: Arena, p: i32): void {
    this.unmapPages(pool, a, p, p + 1);
    this.aliasUnmaps++;
  }

  /**
   * Gathers up to `want` chunks (slots) of the pool into `gathered` for pages of arena a: free
   * chunks first, the one forecast to be needed last first (reuse-forecast.ts), then new ones.
   * Returns how many it got.
   */
  gatherChunks(pool: ChunkPool, a: Arena, want: i32): i32 {
    if (this.gathered.length < want) this.gathered = new StaticArray<i32>(max(want, this.gathered.length * 2));
    let got = 0;
    while (got < want) {
      const budget = this.chunkBudget(pool);
      const canCreate = this.withinFraction(this.chunkBytes, pool.chunkBytes);
      if (pool.freeCount > 0 && (<i64>pool.chunks >= budget || !canCreate)) {
        got = this.takeFree(pool, a, want, got);
        continue;
      }
      if (canCreate && this.chunkBytes + pool.chunkBytes > this.peakChunkBytes) this.releaseOthersFree(pool);
      const h = canCreate ? this.device.memCreate(pool.chunkBytes) : NO_HANDLE;
      if (h == NO_HANDLE) {
        if (pool.freeCount == 0) break;
        got = this.takeFree(pool, a, want, got);
        continue;
      }
      this.chunks++;
      this.chunkBytes += pool.chunkBytes;
      if (this.chunkBytes > this.peakChunkBytes) this.peakChunkBytes = this.chunkBytes;
      this.stats.increase(STAT_RESERVED_BYTES, a.small, pool.chunkBytes);
      unchecked((this.gathered[got++] = pool.newSlot(h)));
    }
    return got;
  }

  /** The chunks the pool may hold before its free ones are reused rather than new ones created: its touched peak plus the slack. */
  @inline private chunkBudget(pool: ChunkPool): i64 {
    return <i64>pool.touchedPeak + (<i64>pool.touchedPeak * this.slackPermille) / 1000;
  }

  /**
   * Takes the pool's victim chunk (reuse-forecast.ts) off its free list into `gathered` for a page
   * of arena a; returns the new count. Its pages in a stay mapped. A chunk mapped in another arena
   * (another stream's, or the other pool's arenas when the page sizes are equal) is unmapped there
   * first; when it is mapped at one page only, the free chunks after it in the list that are each
   * mapped at the next page of that arena alone (freed with it) go too, up to want - got, with one
   * unmap.
   */
  private takeFree(pool: ChunkPool, a: Arena, want: i32, got: i32): i32 {
    const s = victimChunk(pool, this.arenas, this.clock);
    const at = pool.arenaOf(s);
    if (at == a.id) {
      pool.freeRemove(s);
      this.chunkMoves++;
      unchecked((this.gathered[got++] = s));
      return got;
    }
    const from = this.arena(at);
    if (unchecked(pool.aliasCount[s]) > 1) {
      pool.freeRemove(s);
      this.chunkMoves++;
      for (let p = unchecked(pool.aliasHead[s]); p != NO_PAGE; p = unchecked(pool.aliasHead[s])) this.unmapPages(pool, from, p, p + 1);
      this.handOver(pool, from, a);
      unchecked((this.gathered[got++] = s));
      return got;
    }
    const first = unchecked(pool.aliasHead[s]);
    let end = first + 1;
    let last = s;
    for (;;) {
      const next = unchecked(pool.freeNext[last]);
      if (got + (end - first) >= want || next == NO_CHUNK || pool.arenaOf(next) != at ||
          unchecked(pool.aliasCount[next]) != 1 || unchecked(pool.aliasHead[next]) != end) break;
      last = next;
      end++;
    }
    for (let p = first; p < end; p++) {
      const c = from.chunkAt(p);
      pool.freeRemove(c);
      this.chunkMoves++;
      unchecked((this.gathered[got++] = c));
      this.handOver(pool, from, a);
    }
    this.unmapPages(pool, from, first, end);
    return got;
  }

  /**
   * Before a chunk of `pool` is created that would raise the peak reserved: releases free chunks of
   * the other pool (each unmapped at every page that maps it, then released) until the new chunk no
   * longer raises it or none is left. The two pools' chunks cannot back each other's pages (their
   * sizes differ), so without this the peak is the small pool's most plus the large pool's most,
   * even when they are reached at different times: on the recorded traces of 0.1-1.7 GiB, free 20
   * MiB chunks stayed reserved while the small pool grew, and free 2 MiB chunks while the large one
   * did (docs/policies.md, kv_cache 1.313 -> 1.196 x, tfm_gc_cap 1.072 -> 1.042 x). Chunks go in
   * the order the reuse forecast would hand them over, the one needed last first.
   */
  private releaseOthersFree(pool: ChunkPool): void {
    for (let i = 0; i < this.pools.length; i++) {
      const other = unchecked(this.pools[i]);
      if (other === pool) continue;
      while (other.freeCount > 0 && this.chunkBytes + pool.chunkBytes > this.peakChunkBytes) {
        const s = victimChunk(other, this.arenas, this.clock);
        other.freeRemove(s);
        const from = this.arena(other.arenaOf(s));
        for (let p = unchecked(other.aliasHead[s]); p != NO_PAGE; p = unchecked(other.aliasHead[s])) this.unmapPages(other, from, p, p + 1);
        this.releaseChunk(other, from.small, s);
      }
    }
  }

  /** Unmaps pages [first, end) of arena `from` with one call, and unlinks them from their chunks' aliases. */
  private unmapPages(pool: ChunkPool, from: Arena, first: i32, end: i32): void {
    this.unmapRun(from, first, end);
    for (let p = first; p < end; p++) unlinkAlias(pool, from, p);
  }

  /** The device call for pages [first, end) of arena a: one unmap, logged and counted. The pages' books are the caller's. */
  private unmapRun(a: Arena, first: i32, end: i32): void {
    const va = a.pageAddress(first);
    const bytes = <u64>(end - first) * a.pageBytes;
    this.device.unmap(va, bytes);
    this.log.record(ACTION_SEGMENT_UNMAP, va, bytes);
    this.stats.count(NUM_DEVICE_FREE);
  }

  /** A chunk of the pool goes from arena `from` to arena `to`: its reserved bytes go with it when one is small and the other large. */
  @inline private handOver(pool: ChunkPool, from: Arena, to: Arena): void {
    if (from.small == to.small) return;
    this.stats.decrease(STAT_RESERVED_BYTES, from.small, pool.chunkBytes);
    this.stats.increase(STAT_RESERVED_BYTES, to.small, pool.chunkBytes);
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

  /** Drops the touches of [addr, addr + bytes); the chunks of pages left untouched become free. */
  unbackPages(a: Arena, addr: u64, bytes: u64): void {
    const pool = this.pool(a);
    const end = BROKEN == BROKEN_LAKEBED_UNTOUCH_PAST_END ? min(a.endPage(addr, bytes) + 1, a.capacity) : a.endPage(addr, bytes); // broken.ts
    for (let p = a.pageOf(addr); p < end; p++) {
      const t = a.touch(p) - 1;
      unchecked((a.touches[p] = t));
      if (t == 0) {
        pool.touchedPages--;
        noteRelease(a, p, this.clock);
        const s = a.chunkAt(p);
        if (s != UNMAPPED && pool.ownerOf(s) == p) {
          unchecked((pool.owner[s] = NO_OWNER));
          pool.freeAppend(s);
        }
      }
    }
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
   * torch.cuda.empty_cache(): completes pending frees (a full synchronization), then releases every
   * free chunk, after unmapping each of its pages (one unmap per run of such pages). Pages mapping
   * a chunk in use elsewhere keep their mapping: it holds no memory.
   */
  emptyCache(): void {
    this.completePendingFrees();
    for (let i = 0; i < this.arenas.length; i++) this.releaseIdlePages(this.arena(i));
  }

  /** Unmaps every page of arena a that maps a free chunk and releases those chunks, one unmap per run of such pages. */
  private releaseIdlePages(a: Arena): void {
    let run = -1;
    for (let p = 0; p <= a.highPage; p++) {
      const idle = p < a.highPage && a.touch(p) == 0 && this.mapsFreeChunk(a, p);
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
    this.unmapRun(a, from, to);
    for (let p = from; p < to; p++) {
      const s = unlinkAlias(pool, a, p);
      if (unchecked(pool.aliasCount[s]) > 0) continue;
      // its last page: the chunk is mapped nowhere now
      pool.freeRemove(s);
      this.releaseChunk(pool, a.small, s);
    }
  }

  /**
   * Free chunks of the request's own pool are reused before any chunk is released; a malloc gives
   * memory back only while the other pool holds free ones: when its chunks cannot be had (malloc),
   * or when the chunks it creates would raise the peak reserved (releaseOthersFree).
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
    if (missing <= 0) return false;
    if (!this.canGather(pool, missing)) return true;
    // the chunks gatherChunks would create: those the free ones do not cover, all of them while
    // the pool holds fewer chunks than its slack allows (counted against the peak before this touch)
    const budget = this.chunkBudget(pool);
    const fresh = <i64>pool.chunks >= budget ? <i64>missing - <i64>pool.freeCount : <i64>missing;
    return fresh > 0 && this.chunkBytes + <u64>fresh * pool.chunkBytes > this.peakChunkBytes;
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
      case 3: return <f64>this.aliasUnmaps;
    }
    return 0;
  }
}
