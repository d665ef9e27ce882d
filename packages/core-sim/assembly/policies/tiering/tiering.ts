// tiering: live blocks move to pinned host memory and back, so that a job runs on a device smaller
// than its peak. Blocks are packed at 512 bytes into one virtual arena per stream (tier-arena.ts),
// best fit, over 2 MiB pages, each backed by its own chunk while it is on the device. Given a device
// capacity (the replay's --capacity), a request that would pass it does not fail: the policy picks
// the pages whose blocks are needed last (next-use.ts: `online` from the past, `belady` from the
// trace's future) and moves them to the host tier: copy out, unmap, release the chunk; the virtual
// range stays reserved, so every address stays valid. Before the replay hands an operator's uses
// over (Policy.useBlocks), every page of every block it uses is brought back: create a chunk, map,
// set access, copy in. A use never touches a page on the host. Adjacent pages that move together
// (the pages of one large block, mostly) move in one copy: a run of pages goes out to adjacent host
// slots by one copyOut, and pages adjacent on the device and in the host arena come back by one
// copyIn, after their chunks are created and mapped one by one; the cost model charges a copy by
// its size, so the simulator, the live replay and the stall estimate see the same calls.
//
// Prefetch batching: an operator needs only its own blocks' pages, so a run that left in one copy
// would come back in pieces, each a copy with its own fixed cost (~14 us on an H200, a quarter of
// a lone 2 MiB copy). So beside each run an operator needs, its neighbours (adjacent on the device
// and in the host arena, up to the first that is not) come back in the same copy when one of their
// blocks is due within PREFETCH_WINDOW positions (NextUse.nextNeed: belady, the next recorded use;
// online, from the past only, the learned or own last gap, a prediction already passed counting as
// due now), and only into room that costs no upcoming use anything: chunks free under the capacity,
// or those of victims whose pages are needed after the window, chosen with the operator's own
// victims in one batch (INV-TIER-9).
//
// The capacity is in chunks: chunks created and not released, which are exactly the mapped pages
// (a page whose last block goes is unmapped and its chunk released at once, so reserved bytes are
// always the mapped ones), never pass it. A request whose own pages pass
// it is out of memory, as is one whose pages cannot be made room for (every other page pinned by the
// same operation, or the host arena full). An operator whose blocks together pass the capacity
// cannot run: its uses are counted as unserved (the replay reports them as out of memory).
//
// Without use events (a trace recorded without them, or the property harness's command programs)
// nothing can be brought back in time, so nothing moves: the capacity is then a plain limit, as
// set_per_process_memory_fraction is in the other policies (the CLI refuses such a tiering replay;
// the library runs it so that every policy replays every trace). Without a capacity nothing moves
// either.
//
// What it reports (counter(i), names in the registry): pages moved each way, the copies' seconds,
// the stall estimate (transfer-clock.ts), peak host bytes, peak device bytes, unserved uses.
//
// Invariants (checked by brokenInvariant(), valid.ts; the number is what it returns):
//  INV-TIER-1  each arena's blocks tile its reservation exactly: the chain from the head at the
//              base is linked both ways, contiguous, sizes are positive multiples of 512, every block
//              carries the arena's id and stream; so no two live blocks share a virtual byte, and a
//              block's address, fixed at malloc, is never changed by a move.
//  INV-TIER-2  an arena's free set holds exactly its blocks that are neither allocated nor
//              pending, well formed; no two neighbours are both free.
//  INV-TIER-3  touches[p] equals the number of allocated or pending blocks touching page p.
//  INV-TIER-4  a touched page is either resident (a chunk mapped, no host slot) or on the host (a
//              host slot, nothing mapped); an untouched page has neither.
//  INV-TIER-5  chunks (created, not released) == mapped pages; reserved_bytes ==
//              chunks x 2 MiB == the device's physical bytes; with a tier capacity, chunks never
//              pass it (peakChunks included).
//  INV-TIER-6  the host slots in use are exactly the slots of the pages on the host, each held by
//              one page; used <= peak <= slots in the arena.
//  INV-TIER-7  allocation, allocated_bytes, active, active_bytes, requested_bytes equal their sums
//              over the blocks; segment == arenas; peaks >= current.
//  INV-TIER-8  after useBlocks, every page of every block used is resident (unless the use was
//              counted unserved).
//  INV-TIER-9  prefetch never evicts for itself beyond its own pages: a use evicts no more pages
//              than its batch (the pages it missed plus those it prefetched) lacked beyond the chunks
//              free under the capacity before it (each prefetched page takes free room or the room
//              of a victim needed after the window; no victim leaves for room that stays unused),
//              and over every use the same sums hold, with the prefetched pages a part of the pages
//              brought in.

import {
  Device, NO_HANDLE, CALL_COPY_OUT, CALL_COPY_IN, CALL_UNMAP, CALL_MEM_RELEASE, CALL_MEM_CREATE, CALL_MAP,
  CALL_SET_ACCESS,
} from "../../device/device";
import { callMicros } from "../../device/cost-model";
import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, newBlock, bAddr, bSize, bPrev, bNext, bSegment, bRequested,
  hasFlag, setFlag, setRequested, setTraceId as setBlockTraceId, bTraceId,
} from "../../memory/block-table";
import { BY_SIZE, setInsert, setErase, lowerBound } from "../../memory/free-set";
import { splitFront } from "../../memory/block-links";
import { UNLIMITED } from "../config";
import { isSmallSize, MIN_BLOCK_BYTES } from "../rounding";
import {
  STAT_ALLOCATION, STAT_SEGMENT, STAT_ACTIVE, STAT_ALLOCATED_BYTES, STAT_RESERVED_BYTES,
  STAT_ACTIVE_BYTES, STAT_REQUESTED_BYTES, NUM_OOMS, NUM_DEVICE_ALLOC, NUM_DEVICE_FREE,
} from "../stats";
import { Policy, NO_HANDLE_BLOCK } from "../policy";
import { expandableAddressSpace } from "../caching/caching";
import { SegmentLog, ACTION_SEGMENT_MAP, ACTION_SEGMENT_UNMAP } from "../../replay/segment-log";
import { Layout } from "../../replay/layout";
import { UseColumns } from "../../replay/uses";
import { TierArena, PAGE_BYTES, NO_SLOT, DROPPED } from "./tier-arena";
import { HostSlots } from "./host-slots";
import { NextUse, NEVER, VICTIM_ONLINE } from "./next-use";
import { TransferClock } from "./transfer-clock";
import { brokenTieringInvariant, brokenTieringLocalInvariant } from "./valid";
import { writeTieringLayout } from "./layout-writer";
import {
  BROKEN, BROKEN_TIERING_USE_SKIPS_LAST_PAGE, BROKEN_TIERING_EVICTS_PINNED, BROKEN_TIERING_HOST_SLOT_LEAK,
  BROKEN_TIERING_IGNORES_CAPACITY, BROKEN_TIERING_SHRINK_KEEPS_A_PAGE, BROKEN_TIERING_PREFETCH_EVICTS_EXTRA,
} from "./broken-tiering";

/** tiering's own settings (the tiering_* keys of the settings string), set before start(). */
export class TieringConfig {
  /** VICTIM_ONLINE or VICTIM_BELADY (tiering_victim) */
  victim: i32 = VICTIM_ONLINE;
  /** the pinned host arena, bytes (tiering_host_mb); 0: what the replay sizes from the trace */
  hostBytes: u64 = 0;
}

export const tieringConf = new TieringConfig();

/** Sets tiering's settings (from src/wasm.ts applyConf), before start(). */
export function setTieringConf(victim: i32, hostBytes: f64): void {
  tieringConf.victim = victim;
  tieringConf.hostBytes = <u64>hostBytes;
}

const MIN_HOST_BYTES: u64 = 64 << 20;
/**
 * Prefetch batching's horizon, in trace positions (events): a page on the host beside a run being
 * brought back comes with it when one of its blocks is needed within this many positions of now.
 */
export const PREFETCH_WINDOW: i32 = 64;

export class TieringPolicy extends Policy {
  arenas: Array<TierArena> = new Array<TierArena>();
  /** stream -> arena id, -1: none yet */
  private arenaOf: Array<i32> = new Array<i32>();
  private addressSpaceBytes: u64;
  /** chunks created and not released, and the most there have been */
  chunks: i32 = 0;
  peakChunks: i32 = 0;
  /** the tier capacity in chunks, 0: none (nothing moves) */
  capacityChunks: i32 = 0;
  host: HostSlots = new HostSlots();
  next: NextUse;
  clock: TransferClock = new TransferClock();
  private hostBytesWanted: u64;
  /** pages may move to the host: the replay hands this policy use events (beginUses) */
  private moves: bool = false;
  /** the current operation (a malloc or one position's uses); its pages are pinned with it */
  stamp: i32 = 0;
  /** the position being replayed (the replay's current event) */
  private now: i32 = 0;
  /** when the chunk the last eviction freed is free, on the transfer clock (NaN: no eviction) */
  private freedChunkAt: f64 = NaN;
  // the handles of the last useBlocks, for the local check (INV-TIER-8)
  usedHandles: StaticArray<i32> = new StaticArray<i32>(0);
  usedCount: i32 = 0;
  // what it did
  pagesOut: i64 = 0;
  pagesIn: i64 = 0;
  unservedUses: i64 = 0;
  /** pages brought back by prefetch batching (beside a needed run, not needed by its operation) */
  prefetchedPages: i64 = 0;
  /** pages a use's operation missed, and evicted to make room, over every use (INV-TIER-9) */
  usesMissingPages: i64 = 0;
  usesEvictedPages: i64 = 0;
  /** over every use, the chunks each lacked for its batch (useShort), summed (INV-TIER-9) */
  usesShortPages: i64 = 0;
  // the uses since the last local check (several operators may run at one position): the pages they
  // evicted, and the chunks their batches lacked, each use's useShort, summed (INV-TIER-9; the local
  // check zeroes both)
  useEvicted: i64 = 0;
  useLacked: i64 = 0;
  // the last useBlocks: the pages it prefetched, and the chunks that could be created under the
  // capacity before it evicted
  usePrefetched: i32 = 0;
  useHeadroom: i32 = 0;
  firstUnservedPosition: i32 = -1;
  // the serverless shrink (shrink below): what it did
  private uses: UseColumns | null = null;
  private shrinkCursor: i32 = 0;
  shrinks: i64 = 0;
  /** device bytes each shrink gave back, summed */
  shrinkFreedBytes: f64 = 0;
  /** the lane time of every shrink's moves, and of bringing its pages back, µs */
  shrinkMicros: f64 = 0;
  refillMicros: f64 = 0;
  /** bytes of pages a shrink dropped (every block on them discardable) */
  droppedBytes: f64 = 0;
  /** the most the device held right after a shrink: what stayed resident */
  residentAfterShrinkBytes: f64 = 0;
  /** pages dropped by a shrink, not yet back */
  pagesDropped: i32 = 0;
  /** pages on the host now (= host.used), kept for the O(1) check */
  pagesOnHost: i32 = 0;
  /** pages with a chunk mapped */
  mappedPages: i32 = 0;

  constructor(device: Device, log: SegmentLog, tierCapacityBytes: u64) {
    super(device, log);
    this.addressSpaceBytes = expandableAddressSpace(device.totalBytes());
    this.capacityChunks = <i32>(tierCapacityBytes / PAGE_BYTES);
    this.next = new NextUse(tieringConf.victim);
    this.hostBytesWanted = tieringConf.hostBytes;
  }

  @inline arena(id: i32): TierArena {
    return unchecked(this.arenas[id]);
  }

  /** The arena of a stream, reserved on first use; null when no address space is left. */
  arenaFor(stream: i32): TierArena | null {
    while (this.arenaOf.length <= stream) this.arenaOf.push(-1);
    const id = unchecked(this.arenaOf[stream]);
    if (id >= 0) return this.arena(id);
    const a = new TierArena(this.arenas.length, stream, this.addressSpaceBytes);
    if (!a.reserve(this.device)) return null;
    const b = newBlock(a.base, a.vaBytes(), stream, false, a.id);
    a.head = b;
    a.freeRoot = setInsert(BY_SIZE, a.freeRoot, b);
    this.arenas.push(a);
    unchecked((this.arenaOf[stream] = a.id));
    this.stats.increase(STAT_SEGMENT, false, 1);
    return a;
  }

  // ---- use events ---------------------------------------------------------------------------

  readsUses(): bool {
    return true;
  }

  beginUses(uses: UseColumns): void {
    this.moves = true;
    this.uses = uses;
    this.next.readUses(uses);
    this.clock.setClock(uses);
  }

  useBlocks(position: i32, handles: StaticArray<i32>, firstUse: i32, count: i32): void {
    this.now = position;
    this.shrinkIfDue(position);
    const stamp = ++this.stamp;
    // pin every page the operator touches; those off the device, each once, are to be fetched
    let missing = 0;
    let wanted = 0;
    for (let k = 0; k < count; k++) {
      const h = unchecked(handles[k]);
      if (h < 0) continue;
      const a = this.arena(bSegment(h));
      const first = a.pageOf(bAddr(h));
      const end = a.endPage(bAddr(h), bSize(h));
      let fetchEnd = end;
      if (BROKEN == BROKEN_TIERING_USE_SKIPS_LAST_PAGE && end - first > 1) fetchEnd--; // broken-tiering.ts
      for (let p = first; p < end; p++) {
        if (unchecked(a.pinned[p]) != stamp && a.away(p)) {
          missing++;
          if (p < fetchEnd) {
            if (wanted == this.wantedScratch.length) this.wantedScratch = grownI64(this.wantedScratch);
            unchecked((this.wantedScratch[wanted++] = (<i64>a.id << 32) | <i64>p));
          }
        }
        unchecked((a.pinned[p] = stamp));
        unchecked((a.lastTouch[p] = position));
      }
    }
    // in address order, so that pages adjacent on the device and in the host arena come back in one copy
    const keys = this.wantedScratch;
    sortAscending(keys, wanted);
    // prefetch batching: beside each run the operation needs, its neighbours adjacent on the device
    // and in the host arena and due soon (dueSoon) come back in the same copy, so that one copy's
    // fixed cost is paid once rather than again by each neighbour's own copy a few operators later.
    // They are marked first (pinned = -stamp), so that their room is made with the operation's
    // (one eviction batch), from victims no use within the window needs (makeRoom's horizon).
    let extra = 0;
    if (wanted > 0) {
      for (let i = 0; i < wanted; ) {
        const run = this.neededRun(keys, i, wanted);
        const key = unchecked(keys[i]);
        extra += this.markNeighbours(this.arena(<i32>(key >> 32)), <i32>(key & 0xffffffff), run, stamp);
        i += run;
      }
    }
    const outBefore = this.pagesOut;
    this.useHeadroom = this.headroom();
    const can = missing > 0 ? this.makeRoom(missing, extra, position + PREFETCH_WINDOW) : 0;
    if (BROKEN == BROKEN_TIERING_PREFETCH_EVICTS_EXTRA && extra > 0 && this.capacityChunks > 0) this.makeRoom(this.headroom() + 1); // broken-tiering.ts
    const room = min(can, missing);
    // what is left once the operation's own pages have room; none when they have not
    let spare = can >= missing ? can - missing : 0;
    const evicted = this.pagesOut - outBefore;
    this.usePrefetched = 0;
    let fetched = 0;
    for (let i = 0; i < wanted; ) {
      const key = unchecked(keys[i]);
      const a = this.arena(<i32>(key >> 32));
      const p = <i32>(key & 0xffffffff);
      let run = min(this.neededRun(keys, i, wanted), room - fetched);
      if (run <= 0) break;
      // the marked neighbours, as far as the room made for them goes, before and after
      const slot = a.hostSlot(p);
      let start = p;
      let after = p + run;
      if (slot >= 0) {
        while (spare > 0 && start > 0 && slot - (p - start) > 0 && unchecked(a.pinned[start - 1]) == -stamp && a.hostSlot(start - 1) == slot - (p - start) - 1) {
          start--;
          spare--;
        }
        while (spare > 0 && after < a.highPage && unchecked(a.pinned[after]) == -stamp && a.hostSlot(after) == slot + (after - p)) {
          after++;
          spare--;
        }
      }
      this.usePrefetched += after - start - run;
      this.fetchRun(a, start, after - start);
      fetched += run;
      i += run;
    }
    this.prefetchedPages += this.usePrefetched;
    this.usesMissingPages += missing;
    const lacked = useShort(missing, this.usePrefetched, this.useHeadroom);
    this.usesEvictedPages += evicted;
    this.usesShortPages += lacked;
    this.useEvicted += evicted;
    this.useLacked += lacked;
    const served = fetched == wanted;
    for (let k = 0; k < count; k++) {
      const h = unchecked(handles[k]);
      if (h >= 0) this.next.used(h, firstUse + k, position);
    }
    if (!served) {
      this.unservedUses += 1;
      if (this.firstUnservedPosition < 0) this.firstUnservedPosition = position;
    }
    if (this.usedHandles.length < count) this.usedHandles = new StaticArray<i32>(max(count, 16));
    for (let k = 0; k < count; k++) unchecked((this.usedHandles[k] = handles[k]));
    this.usedCount = served ? count : 0;
  }

  /**
   * How many of the wanted pages from keys[i] come back in one copy: those adjacent on the device
   * and in the host arena (a dropped page comes back alone).
   */
  private neededRun(keys: StaticArray<i64>, i: i32, wanted: i32): i32 {
    const key = unchecked(keys[i]);
    const a = this.arena(<i32>(key >> 32));
    const p = <i32>(key & 0xffffffff);
    const slot = a.hostSlot(p);
    let run = 1;
    if (slot >= 0) while (i + run < wanted && unchecked(keys[i + run]) == key + run && a.hostSlot(p + run) == slot + run) run++;
    return run;
  }

  /**
   * Marks (pinned = -stamp) the pages beside the needed run [p, p + run) of arena a that may come
   * back with it: on the host, in the host slots adjacent to the run's, each due soon (dueSoon), up
   * to the first that is not; returns how many it marked.
   */
  private markNeighbours(a: TierArena, p: i32, run: i32, stamp: i32): i32 {
    const slot = a.hostSlot(p);
    if (slot < 0) return 0;
    let marked = 0;
    // the block at page p's start, found once from the arena's head; the neighbours' blocks are
    // found from it, backwards and forwards, rather than from the head again for each
    const at = a.pageAddress(p);
    let from = a.head;
    while (bAddr(from) + bSize(from) <= at) from = bNext(from);
    let back = from;
    for (let q = p - 1; q >= 0 && slot - (p - q) >= 0 && a.hostSlot(q) == slot - (p - q); q--) {
      const start = a.pageAddress(q);
      while (bAddr(back) > start) back = bPrev(back);
      if (!this.dueSoon(a, q, stamp, back)) break;
      unchecked((a.pinned[q] = -stamp));
      marked++;
    }
    for (let q = p + run; q < a.highPage && a.hostSlot(q) == slot + (q - p) && this.dueSoon(a, q, stamp, from); q++) {
      unchecked((a.pinned[q] = -stamp));
      marked++;
    }
    return marked;
  }

  /**
   * Whether page p of arena a (on the host) is due soon enough to come back beside a needed run:
   * not the operation's own nor marked already, and some live block on it needed (NextUse.nextNeed:
   * belady's next recorded use, online's prediction from the past) within PREFETCH_WINDOW positions.
   */
  private dueSoon(a: TierArena, p: i32, stamp: i32, from: i32): bool {
    const mark = unchecked(a.pinned[p]);
    if (mark == stamp || mark == -stamp) return false;
    const start = a.pageAddress(p);
    const end = start + PAGE_BYTES;
    const horizon = this.now + PREFETCH_WINDOW;
    for (let b = from; b != NO_BLOCK && bAddr(b) < end; b = bNext(b)) {
      if (bAddr(b) + bSize(b) <= start) continue;
      if (!hasFlag(b, FLAG_ALLOCATED) && !hasFlag(b, FLAG_PENDING)) continue;
      const need = this.next.nextNeed(b, this.now);
      if (need != NEVER && need <= horizon) return true;
    }
    return false;
  }

  // ---- malloc -------------------------------------------------------------------------------

  malloc(requestBytes: u64, stream: i32): i32 {
    this.now = this.log.currentEvent;
    const size = max((requestBytes + MIN_BLOCK_BYTES - 1) & ~(MIN_BLOCK_BYTES - 1), MIN_BLOCK_BYTES);
    const h = this.place(size, requestBytes, stream);
    if (h == NO_HANDLE_BLOCK) this.stats.count(NUM_OOMS);
    return h;
  }

  private place(size: u64, requestBytes: u64, stream: i32): i32 {
    this.shrinkIfDue(this.now);
    const maybe = this.arenaFor(stream);
    if (maybe == null) return NO_HANDLE_BLOCK;
    const a = changetype<TierArena>(maybe);
    const found = lowerBound(BY_SIZE, a.freeRoot, stream, size, 0);
    if (found == NO_BLOCK) return NO_HANDLE_BLOCK;
    const addr = bAddr(found);
    const first = a.pageOf(addr);
    const end = a.endPage(addr, size);
    if (this.capacityChunks > 0 && end - first > this.capacityChunks) return NO_HANDLE_BLOCK;
    a.ensurePages(end);
    // pages the block needs a chunk for: untouched ones and those on the host
    const stamp = ++this.stamp;
    let missing = 0;
    for (let p = first; p < end; p++) {
      if (!a.resident(p)) missing++;
      unchecked((a.pinned[p] = stamp));
    }
    if (missing > 0 && this.makeRoom(missing) < missing) return NO_HANDLE_BLOCK;
    for (let p = first; p < end; ) {
      if (a.away(p)) {
        const run = this.runOnHost(a, p, end);
        this.fetchRun(a, p, run);
        p += run;
        continue;
      }
      if (!a.resident(p)) this.mapNew(a, p);
      p++;
    }
    a.freeRoot = setErase(BY_SIZE, a.freeRoot, found);
    let block = found;
    if (bSize(found) - size >= MIN_BLOCK_BYTES) {
      // the front becomes the block; the remainder keeps the old record and stays free
      block = newBlock(addr, size, stream, false, a.id);
      splitFront(found, block, size);
      if (bPrev(block) == NO_BLOCK) a.head = block;
      a.freeRoot = setInsert(BY_SIZE, a.freeRoot, found);
    }
    for (let p = first; p < end; p++) {
      unchecked((a.touches[p] += 1));
      unchecked((a.lastTouch[p] = this.now));
    }
    if (end > a.highPage) a.highPage = end;
    setFlag(block, FLAG_ALLOCATED, true);
    setRequested(block, requestBytes);
    const small = isSmallSize(size);
    const blockSize = bSize(block);
    this.stats.increase(STAT_ALLOCATION, small, 1);
    this.stats.increase(STAT_ALLOCATED_BYTES, small, blockSize);
    this.stats.increase(STAT_ACTIVE, small, 1);
    this.stats.increase(STAT_ACTIVE_BYTES, small, blockSize);
    this.stats.increase(STAT_REQUESTED_BYTES, small, requestBytes);
    this.next.allocated(block, this.now);
    return block;
  }

  setTraceId(handle: i32, traceId: i32): void {
    setBlockTraceId(handle, traceId);
    this.next.named(handle, traceId);
  }

  // ---- chunks and moves ---------------------------------------------------------------------

  /** Chunks the policy may still create: under the tier capacity and the memory fraction. */
  private headroom(): i32 {
    let room = this.capacityChunks > 0 ? this.capacityChunks - this.chunks : i32.MAX_VALUE;
    if (this.setFraction) {
      const held = <u64>this.chunks * PAGE_BYTES;
      const allowed = this.allowedMaxBytes > held ? (this.allowedMaxBytes - held) / PAGE_BYTES : 0;
      room = min(room, <i32>min(allowed, <u64>i32.MAX_VALUE));
    }
    if (BROKEN == BROKEN_TIERING_IGNORES_CAPACITY) room = i32.MAX_VALUE; // broken-tiering.ts
    return room;
  }

  /**
   * Makes sure `wanted` chunks can be created under the capacity, moving unpinned pages to the host
   * when they cannot; returns how many can (fewer: the rest has no victim). Up to `optional` more
   * (a prefetch's) are made from free room and from victims needed after `horizon` only.
   */
  private makeRoom(wanted: i32, optional: i32 = 0, horizon: i32 = NEVER): i32 {
    this.freedChunkAt = NaN;
    const total = wanted + optional;
    let can = max(0, min(this.headroom(), total));
    if (can >= total || this.capacityChunks == 0 || !this.moves || !this.openHost()) return can;
    this.chooseVictims(total - can);
    // the best victims the host arena has room for; past those `wanted` needs, only victims no use
    // before `horizon` needs (victims come needed-last first, so those are a prefix)
    let n = min(this.victimCount, this.host.free());
    for (let k = max(0, wanted - can); k < n; k++) {
      if (unchecked(this.victimScores[k]) <= horizon) {
        n = k;
        break;
      }
    }
    // then in address order: adjacent ones leave in one copy
    const keys = this.victimPages;
    sortAscending(keys, n);
    for (let i = 0; i < n; ) {
      const key = unchecked(keys[i]);
      let run = 1;
      while (i + run < n && unchecked(keys[i + run]) == key + run) run++;
      const moved = this.evictRun(this.arena(<i32>(key >> 32)), <i32>(key & 0xffffffff), run);
      can += moved;
      if (moved < run) break;
      i += run;
    }
    return can;
  }

  /** Pins the host arena on the first move; false when the device cannot. */
  private openHost(): bool {
    if (this.host.opened()) return true;
    const bytes = max(this.hostBytesWanted, MIN_HOST_BYTES);
    if (!this.device.hostReserve(bytes)) return false;
    this.host.open(bytes);
    return true;
  }

  /**
   * How many pages from page p (off the device), before page `limit`, come back in one copy: those
   * in adjacent host slots in the same order (a dropped page comes back alone, with no copy).
   */
  private runOnHost(a: TierArena, p: i32, limit: i32): i32 {
    const slot = a.hostSlot(p);
    let run = 1;
    if (slot >= 0) while (p + run < limit && a.hostSlot(p + run) == slot + run) run++;
    return run;
  }

  /** A new chunk (makeRoom said one can be had). */
  private takeChunk(): i32 {
    const h = this.device.memCreate(PAGE_BYTES);
    assert(h != NO_HANDLE, "tiering: the device refused a chunk under the capacity");
    this.chunks++;
    if (this.chunks > this.peakChunks) this.peakChunks = this.chunks;
    this.stats.increase(STAT_RESERVED_BYTES, false, PAGE_BYTES);
    this.stats.count(NUM_DEVICE_ALLOC);
    return h;
  }

  /** Maps a chunk at an untouched page and gives it access. */
  private mapNew(a: TierArena, p: i32): void {
    const h = this.takeChunk();
    const va = a.pageAddress(p);
    assert(this.device.map(va, PAGE_BYTES, h) && this.device.setAccess(va, PAGE_BYTES), "tiering: the device refused a map");
    this.log.record(ACTION_SEGMENT_MAP, va, PAGE_BYTES);
    unchecked((a.handles[p] = h));
    this.mappedPages++;
  }

  /**
   * Brings pages [p, p + n) of arena a back: a chunk created, mapped and given access for each, then
   * one copy in of all of them (adjacent in the host arena, runOnHost); a page a shrink dropped
   * (n is 1) comes back without its content.
   */
  private fetchRun(a: TierArena, p: i32, n: i32): void {
    const slot = a.hostSlot(p);
    const inCalls = callMicros(CALL_MEM_CREATE, PAGE_BYTES) + callMicros(CALL_MAP, PAGE_BYTES) + callMicros(CALL_SET_ACCESS, PAGE_BYTES);
    let outEnd = unchecked(a.outEnd[p]);
    let shrunkPages = 0;
    for (let q = p; q < p + n; q++) {
      const h = this.takeChunk();
      const va = a.pageAddress(q);
      assert(this.device.map(va, PAGE_BYTES, h) && this.device.setAccess(va, PAGE_BYTES), "tiering: the device refused a map");
      this.log.record(ACTION_SEGMENT_MAP, va, PAGE_BYTES);
      if (unchecked(a.shrunk[q]) != 0) {
        shrunkPages++;
        unchecked((a.shrunk[q] = 0));
      }
      outEnd = max(outEnd, unchecked(a.outEnd[q]));
      unchecked((a.hostSlots[q] = NO_SLOT));
      unchecked((a.handles[q] = h));
      this.mappedPages++;
    }
    if (slot == DROPPED) {
      this.refillMicros += <f64>shrunkPages * inCalls;
      this.pagesDropped--;
      return;
    }
    this.device.copyIn(this.host.offset(slot), a.pageAddress(p), <u64>n * PAGE_BYTES);
    if (BROKEN != BROKEN_TIERING_HOST_SLOT_LEAK) for (let k = 0; k < n; k++) this.host.give(slot + k); // broken-tiering.ts
    this.pagesOnHost -= n;
    this.pagesIn += n;
    const copyBefore = this.clock.inCopyMicros;
    this.clock.runIn(outEnd, this.freedChunkAt, this.now, n);
    // a shrink's pages: their calls and their share of the run's copy are the refill's
    this.refillMicros += <f64>shrunkPages * (inCalls + (this.clock.inCopyMicros - copyBefore) / <f64>n);
  }

  /**
   * Moves pages [p, p + n) of arena a (resident, adjacent) to the host: copy out, each unmapped and
   * its chunk released. One copy for the run when the host arena has that many adjacent slots free,
   * else one per piece of adjacent slots; returns the pages moved (fewer: the host arena is full).
   */
  private evictRun(a: TierArena, p: i32, n: i32): i32 {
    if (!this.openHost()) return 0;
    let done = 0;
    while (done < n) {
      const slot = this.host.takeRun(n - done);
      if (slot == NO_SLOT) break;
      const k = this.host.runLength;
      const first = p + done;
      this.device.copyOut(a.pageAddress(first), this.host.offset(slot), <u64>k * PAGE_BYTES);
      let lastTouch = unchecked(a.lastTouch[first]);
      for (let i = 0; i < k; i++) {
        const q = first + i;
        const va = a.pageAddress(q);
        this.device.unmap(va, PAGE_BYTES);
        this.log.record(ACTION_SEGMENT_UNMAP, va, PAGE_BYTES);
        this.device.memRelease(unchecked(a.handles[q]));
        this.stats.decrease(STAT_RESERVED_BYTES, false, PAGE_BYTES);
        this.stats.count(NUM_DEVICE_FREE);
        unchecked((a.handles[q] = 0));
        unchecked((a.hostSlots[q] = slot + i));
        lastTouch = max(lastTouch, unchecked(a.lastTouch[q]));
      }
      this.chunks -= k;
      this.mappedPages -= k;
      this.pagesOnHost += k;
      this.pagesOut += k;
      const end = this.clock.runOut(lastTouch, this.now, k);
      for (let q = first; q < first + k; q++) unchecked((a.outEnd[q] = end));
      if (isNaN(this.freedChunkAt) || end > this.freedChunkAt) this.freedChunkAt = end;
      done += k;
    }
    return done;
  }

  // ---- serverless shrink ----------------------------------------------------------------------
  // At an idle gap of the trace (or a point the user gave: replay/uses.ts, shrinkAt), everything the
  // process holds on the device goes: each resident page is copied to the host arena, unmapped and
  // its chunk released, or dropped without a copy when every block on it is tagged discardable;
  // no chunk is held without a block, so there is no cached free memory left to release. Virtual
  // addresses stay. The pages come back as uses need them, through the same fetch as tiering's (a
  // dropped page comes back without its content). The shrink's own time (each page's copy and
  // calls) and the refill's (each of its pages brought back) are summed apart from the stall;
  // what stays resident is what the host arena had no room for.

  /** Runs the shrinks due at or before `position`. */
  @inline private shrinkIfDue(position: i32): void {
    const uses = this.uses;
    if (uses == null || this.shrinkCursor >= uses.shrinkCount) return;
    while (this.shrinkCursor < uses.shrinkCount && uses.shrinkAtIndex(this.shrinkCursor) <= position) {
      this.shrinkCursor++;
      this.shrink();
    }
  }

  private shrink(): void {
    this.shrinks++;
    const before = this.chunks;
    const uses = changetype<UseColumns>(this.uses);
    const outCalls = callMicros(CALL_UNMAP, PAGE_BYTES) + callMicros(CALL_MEM_RELEASE, PAGE_BYTES);
    this.stamp++; // nothing is pinned: every page may go
    let kept = false;
    for (let i = 0; i < this.arenas.length; i++) {
      const a = this.arena(i);
      // blocks in address order, pages in order: a page is dropped when every block on it is
      // discardable; the others go in runs of adjacent pages (shrinkRun)
      let b = a.head;
      let runStart = 0;
      let run = 0;
      for (let p = 0; p < a.highPage; p++) {
        if (!a.resident(p)) {
          run = this.shrinkRun(a, runStart, run);
          continue;
        }
        if (BROKEN == BROKEN_TIERING_SHRINK_KEEPS_A_PAGE && !kept) { kept = true; run = this.shrinkRun(a, runStart, run); continue; } // broken-tiering.ts
        const start = a.pageAddress(p);
        const end = start + PAGE_BYTES;
        while (b != NO_BLOCK && bAddr(b) + bSize(b) <= start) b = bNext(b);
        let discardable = true;
        for (let c = b; c != NO_BLOCK && bAddr(c) < end; c = bNext(c)) {
          if ((hasFlag(c, FLAG_ALLOCATED) || hasFlag(c, FLAG_PENDING)) && !uses.discardable(bTraceId(c))) {
            discardable = false;
            break;
          }
        }
        if (!discardable) {
          if (run == 0) runStart = p;
          run++;
          continue;
        }
        run = this.shrinkRun(a, runStart, run);
        const h = unchecked(a.handles[p]);
        this.device.unmap(start, PAGE_BYTES);
        this.log.record(ACTION_SEGMENT_UNMAP, start, PAGE_BYTES);
        this.device.memRelease(h);
        this.chunks--;
        this.mappedPages--;
        this.pagesDropped++;
        this.stats.decrease(STAT_RESERVED_BYTES, false, PAGE_BYTES);
        this.stats.count(NUM_DEVICE_FREE);
        unchecked((a.handles[p] = 0));
        unchecked((a.hostSlots[p] = DROPPED));
        this.droppedBytes += <f64>PAGE_BYTES;
        this.shrinkMicros += outCalls;
        unchecked((a.shrunk[p] = 1));
      }
      this.shrinkRun(a, runStart, run);
    }
    this.shrinkFreedBytes += <f64>(before - this.chunks) * <f64>PAGE_BYTES;
    const resident = <f64>this.chunks * <f64>PAGE_BYTES;
    if (resident > this.residentAfterShrinkBytes) this.residentAfterShrinkBytes = resident;
  }

  /**
   * A shrink's run of `n` adjacent resident pages from `start` goes to the host (evictRun; what the
   * host arena has no room for stays resident); returns 0, the length of the next run so far.
   */
  private shrinkRun(a: TierArena, start: i32, n: i32): i32 {
    if (n == 0) return 0;
    const copyBefore = this.clock.outCopyMicros;
    const moved = this.evictRun(a, start, n);
    const outCalls = callMicros(CALL_UNMAP, PAGE_BYTES) + callMicros(CALL_MEM_RELEASE, PAGE_BYTES);
    this.shrinkMicros += <f64>moved * outCalls + (this.clock.outCopyMicros - copyBefore);
    for (let p = start; p < start + moved; p++) unchecked((a.shrunk[p] = 1));
    return 0;
  }

  // scratch for chooseVictims, grown as needed and kept: the module's runtime never frees, so a
  // buffer allocated per call would grow memory with every eviction
  private scoreScratch: StaticArray<i32> = new StaticArray<i32>(64);
  private keyScratch: StaticArray<i64> = new StaticArray<i64>(64);
  private pageScratch: StaticArray<i64> = new StaticArray<i64>(64);
  private orderScratch: StaticArray<i32> = new StaticArray<i32>(64);
  /** chooseVictims' answer: victimPages[0 .. victimCount) */
  private victimPages: StaticArray<i64> = new StaticArray<i64>(64);
  private victimCount: i32 = 0;
  /** each victim's score (chooseVictims: when its page is needed next), victimScores[k] for victimPages[k] */
  private victimScores: StaticArray<i32> = new StaticArray<i32>(64);
  /** useBlocks' pages to fetch, as keys arena << 32 | page */
  private wantedScratch: StaticArray<i64> = new StaticArray<i64>(64);

  /**
   * Up to `count` resident pages, not pinned by the current operation, whose blocks are needed
   * last (the largest next-use score; of equal scores, the page touched longest ago), as keys
   * arena << 32 | page, best victim first, in victimPages[0 .. victimCount).
   */
  private chooseVictims(count: i32): void {
    const now = this.now;
    const stamp = this.stamp;
    let candidates = 0;
    for (let i = 0; i < this.arenas.length; i++) {
      const a = this.arena(i);
      // a page's score: the soonest any of its blocks is needed
      if (this.scoreScratch.length < a.highPage) this.scoreScratch = new StaticArray<i32>(max(a.highPage, this.scoreScratch.length << 1));
      const score = this.scoreScratch;
      for (let p = 0; p < a.highPage; p++) unchecked((score[p] = NEVER));
      for (let b = a.head; b != NO_BLOCK; b = bNext(b)) {
        if (bAddr(b) >= a.pageAddress(a.highPage)) break;
        if (!hasFlag(b, FLAG_ALLOCATED) && !hasFlag(b, FLAG_PENDING)) continue;
        const s = this.next.score(b, now);
        const end = a.endPage(bAddr(b), bSize(b));
        for (let p = a.pageOf(bAddr(b)); p < end; p++) if (s < unchecked(score[p])) unchecked((score[p] = s));
      }
      for (let p = 0; p < a.highPage; p++) {
        if (!a.resident(p)) continue;
        if (unchecked(a.pinned[p]) == stamp && BROKEN != BROKEN_TIERING_EVICTS_PINNED) continue; // broken-tiering.ts
        if (candidates == this.keyScratch.length) this.growCandidates();
        // score, then the oldest touch, then the candidate's index: one 64-bit key, larger first
        const age = <i64>(now - unchecked(a.lastTouch[p])) & 0x7fffff;
        unchecked((this.keyScratch[candidates] = (<i64>unchecked(score[p]) << 32) | (age << 8) | <i64>(candidates & 0xff)));
        unchecked((this.pageScratch[candidates] = (<i64>i << 32) | <i64>p));
        candidates++;
      }
    }
    if (this.orderScratch.length < candidates) this.orderScratch = new StaticArray<i32>(this.keyScratch.length);
    const order = this.orderScratch;
    for (let k = 0; k < candidates; k++) unchecked((order[k] = k));
    sortByKeyDescending(order, this.keyScratch, candidates);
    const n = min(count, candidates);
    if (this.victimPages.length < n) this.victimPages = new StaticArray<i64>(max(n, this.victimPages.length << 1));
    if (this.victimScores.length < n) this.victimScores = new StaticArray<i32>(this.victimPages.length);
    for (let k = 0; k < n; k++) {
      unchecked((this.victimPages[k] = this.pageScratch[order[k]]));
      unchecked((this.victimScores[k] = <i32>(this.keyScratch[order[k]] >> 32)));
    }
    this.victimCount = n;
  }

  private growCandidates(): void {
    const n = this.keyScratch.length << 1;
    const keys = new StaticArray<i64>(n);
    const pages = new StaticArray<i64>(n);
    memory.copy(changetype<usize>(keys), changetype<usize>(this.keyScratch), <usize>this.keyScratch.length << 3);
    memory.copy(changetype<usize>(pages), changetype<usize>(this.pageScratch), <usize>this.pageScratch.length << 3);
    this.keyScratch = keys;
    this.pageScratch = pages;
  }

  // ---- free ---------------------------------------------------------------------------------

  freeRequest(handle: i32): void {
    assert(hasFlag(handle, FLAG_ALLOCATED), "free of a block that is not allocated");
    const small = isSmallSize(bSize(handle));
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
    const small = isSmallSize(bSize(handle));
    this.stats.decrease(STAT_ACTIVE, small, 1);
    this.stats.decrease(STAT_ACTIVE_BYTES, small, bSize(handle));
    this.stats.decrease(STAT_REQUESTED_BYTES, small, bRequested(handle));
    this.next.freed(handle, this.log.currentEvent);
    setBlockTraceId(handle, -1);
    const a = this.arena(bSegment(handle));
    const end = a.endPage(bAddr(handle), bSize(handle));
    for (let p = a.pageOf(bAddr(handle)); p < end; p++) {
      const left = unchecked(a.touches[p]) - 1;
      unchecked((a.touches[p] = left));
      if (left > 0) continue;
      // the page's last block went: its bytes matter no more, wherever they are
      if (a.resident(p)) {
        const h = unchecked(a.handles[p]);
        this.device.unmap(a.pageAddress(p), PAGE_BYTES);
        this.log.record(ACTION_SEGMENT_UNMAP, a.pageAddress(p), PAGE_BYTES);
        this.device.memRelease(h);
        unchecked((a.handles[p] = 0));
        this.mappedPages--;
        this.chunks--;
        this.stats.decrease(STAT_RESERVED_BYTES, false, PAGE_BYTES);
        this.stats.count(NUM_DEVICE_FREE);
      } else if (a.onHost(p)) {
        this.host.give(a.hostSlot(p));
        unchecked((a.hostSlots[p] = NO_SLOT));
        this.pagesOnHost--;
      } else if (a.away(p)) {
        unchecked((a.hostSlots[p] = NO_SLOT));
        this.pagesDropped--;
      }
      unchecked((a.shrunk[p] = 0));
    }
    a.cacheFree(handle);
  }

  /** torch.cuda.empty_cache(): completes pending frees; no chunk is ever held without a block. */
  emptyCache(): void {
    this.completePendingFrees();
  }

  /** A malloc never releases memory: no chunk is idle, and the tier moves pages instead. */
  mallocWouldRelease(requestBytes: u64, stream: i32): bool {
    return false;
  }

  // ---- the rest of the Policy interface ------------------------------------------------------

  brokenInvariant(): i32 {
    return brokenTieringInvariant(this);
  }

  brokenLocalInvariant(): i32 {
    return brokenTieringLocalInvariant(this);
  }

  writeLayout(out: Layout): void {
    writeTieringLayout(this, out);
  }

  // A trace recorded mid-run: the live blocks are placed afresh, in snapshot order, as if allocated
  // then (as lakebed does: tiering would not have made the recorded segments).
  private adoptStream: i32 = 0;
  adoptSegment(address: u64, stream: i32, small: bool, expandable: bool): void {
    this.adoptStream = stream;
  }

  adoptBlock(address: u64, size: u64, requested: u64, state: u8, traceId: i32): i32 {
    return this.adoptAfresh(requested, state, traceId, this.adoptStream);
  }

  adoptDone(): void {}

  /** The counters, in the registry's order (src/policy-registry.ts). */
  counter(i: i32): f64 {
    switch (i) {
      case 0: return <f64>this.pagesOut;
      case 1: return <f64>this.pagesIn;
      case 2: return <f64>this.pagesOut * <f64>PAGE_BYTES;
      case 3: return <f64>this.pagesIn * <f64>PAGE_BYTES;
      case 4: return (this.clock.outCopyMicros + this.clock.inCopyMicros) / 1e6;
      case 5: return this.clock.stallMicros / 1e6;
      case 6: return <f64>this.host.peakUsed * <f64>PAGE_BYTES;
      case 7: return <f64>this.peakChunks * <f64>PAGE_BYTES;
      case 8: return <f64>this.unservedUses;
      case 9: return <f64>this.firstUnservedPosition;
      case 10: return <f64>this.capacityChunks * <f64>PAGE_BYTES;
      case 11: return <f64>this.host.used * <f64>PAGE_BYTES;
      case 12: return <f64>this.shrinks;
      case 13: return this.shrinkFreedBytes;
      case 14: return this.shrinkMicros / 1e6;
      case 15: return this.refillMicros / 1e6;
      case 16: return this.droppedBytes;
      case 17: return this.residentAfterShrinkBytes;
      case 18: return <f64>this.prefetchedPages;
    }
    return 0;
  }
}

/**
 * The chunks a use's batch (its missing pages and those it prefetched) lacked beyond the `headroom`
 * it found under the capacity: the most pages it may evict (INV-TIER-9).
 */
export function useShort(missing: i32, prefetched: i32, headroom: i32): i64 {
  return max<i64>(0, <i64>missing + <i64>prefetched - <i64>headroom);
}

/** Sorts order[0 .. n) so that keys[order[k]] descend (a heap sort: no closures, no allocation). */
function sortByKeyDescending(order: StaticArray<i32>, keys: StaticArray<i64>, n: i32): void {
  // a min-heap on keys, popped to the back: the array ends up descending
  for (let start = (n >> 1) - 1; start >= 0; start--) siftDown(order, keys, start, n);
  for (let end = n - 1; end > 0; end--) {
    const t = unchecked(order[0]);
    unchecked((order[0] = order[end]));
    unchecked((order[end] = t));
    siftDown(order, keys, 0, end);
  }
}

function siftDown(order: StaticArray<i32>, keys: StaticArray<i64>, root: i32, n: i32): void {
  let r = root;
  while (true) {
    const l = 2 * r + 1;
    if (l >= n) return;
    let c = l;
    if (l + 1 < n && unchecked(keys[order[l + 1]]) < unchecked(keys[order[l]])) c = l + 1;
    if (unchecked(keys[order[c]]) >= unchecked(keys[order[r]])) return;
    const t = unchecked(order[r]);
    unchecked((order[r] = order[c]));
    unchecked((order[c] = t));
    r = c;
  }
}

/** A copy of `from` twice as long. */
function grownI64(from: StaticArray<i64>): StaticArray<i64> {
  const to = new StaticArray<i64>(max(from.length << 1, 16));
  memory.copy(changetype<usize>(to), changetype<usize>(from), <usize>from.length << 3);
  return to;
}

/** Sorts keys[0 .. n) ascending, in place (a heap sort: no closures, no allocation). */
function sortAscending(keys: StaticArray<i64>, n: i32): void {
  // a max-heap, popped to the back
  for (let start = (n >> 1) - 1; start >= 0; start--) siftDownMax(keys, start, n);
  for (let end = n - 1; end > 0; end--) {
    const t = unchecked(keys[0]);
    unchecked((keys[0] = keys[end]));
    unchecked((keys[end] = t));
    siftDownMax(keys, 0, end);
  }
}

function siftDownMax(keys: StaticArray<i64>, root: i32, n: i32): void {
  let r = root;
  while (true) {
    const l = 2 * r + 1;
    if (l >= n) return;
    let c = l;
    if (l + 1 < n && unchecked(keys[l + 1]) > unchecked(keys[l])) c = l + 1;
    if (unchecked(keys[c]) <= unchecked(keys[r])) return;
    const t = unchecked(keys[r]);
    unchecked((keys[r] = keys[c]));
    unchecked((keys[c] = t));
    r = c;
  }
}
