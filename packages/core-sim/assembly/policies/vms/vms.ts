// vms: GMLake's virtual memory stitching (ASPLOS'24; GLake's GMLake/src/CUDACachingAllocator.cpp),
// re-implemented from ../../../../../../shared/reference/gmlake-glake.md (section numbers in brackets)
// over the Device's driver calls. GMLake replaces only PyTorch's large pool; the small pool stays
// PyTorch's, so this policy IS the caching allocator (it extends CachingAllocator and hands every
// request of 1 MiB or less to it) with a large pool of its own:
//
//   segments (segment.ts)       new physical memory: N chunks of 2 MiB (cuMemCreate each), mapped
//                               into one range; its pBlocks tile it at chunk granularity
//   pPool    (pFree)            free pBlocks, best fit by (stream, size, address)
//   views    (stitched-view.ts) stitched blocks (sBlocks): a fresh range mapping chunks that pBlocks
//                               own; cached after free, as reusable (sFree) or fragmented
//
// malloc of a large request (rounded to 2 MiB) [2.4]: best fit in the pPool (split off >= 2 MiB);
// else the smallest reusable view within reuseLimit; else stitch at stage 0 (defragLevel 0); else
// a new segment (reAlloc: only the shortfall, stitched with the free blocks); else stitch at stage
// 1; else give cached memory back (release_cached_blocks: every segment that holds nothing, with
// the views over it, and the small pool) and make a new segment; else stitch at stage 2; else out
// of memory.
// A capacity (set_per_process_memory_fraction) refuses a new segment that would exceed it.
//
// Left out of GMLake's pipeline (docs/policies.md): PyTorch's garbage_collection_threshold and the
// oversize release (max_split_size_mb) run on the small pool only; events are those of the trace,
// so every cached view's release is complete when GC looks at it.
//
// Invariants (checked by brokenInvariant(), valid.ts; it returns 100 + the number, and the
// caching allocator's INV-CACHE-n for the small pool and the shared stats):
//  INV-VMS-1  each live segment's pBlocks tile it: the chain from its head is linked both ways and
//             contiguous from base to base + chunks x 2 MiB, every block carries FLAG_VMS, the
//             segment's id and stream, a positive multiple of 2 MiB; owner[c] is the pBlock whose
//             range holds chunk c; every live pBlock record is in one chain.
//  INV-VMS-2  the pPool holds exactly the free pBlocks (neither allocated, pending nor lent),
//             ordered and heap-shaped; no two neighbours are both free.
//  INV-VMS-3  a chunk has exactly one holder while used: it is used iff its pBlock is allocated,
//             pending or lent, and the chunks of lent pBlocks are exactly the used prefixes of the
//             active and pending views, each in one prefix only.
//  INV-VMS-4  a view's chunks are distinct live chunks; each lists the view among its mappers and
//             every listed mapper maps it; freeChunks counts the view's free chunks; the device
//             maps each chunk's handle at its position in the view.
//  INV-VMS-5  a view is ACTIVE iff its record is allocated, PENDING iff pending; cached views have
//             no used prefix, are in the release list (ascending release order, linked both ways)
//             and are REUSABLE iff all their chunks are free; the sPool holds exactly the reusable
//             views; toGC marks only views in use.
//  INV-VMS-6  stitchedBytes is the sum of the live views' ranges; the device's physical bytes are
//             the small pool's plus 2 MiB per chunk of the live segments; reservations are one per
//             segment and view.

import { Device } from "../../device/device";
import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_VMS, FLAG_STITCHED, hasFlag, setFlag, setRequested, bSize, bStream,
  setTraceId as setBlockTraceId, bRequested, bOwner,
} from "../../memory/block-table";
import { BY_SIZE, setInsert, lowerBound } from "../../memory/free-set";
import { AllocatorConfig } from "../config";
import { roundSize, allocationSize, isSmallSize } from "../rounding";
import {
  STAT_SEGMENT, STAT_ACTIVE, STAT_RESERVED_BYTES, STAT_ACTIVE_BYTES, STAT_REQUESTED_BYTES, NUM_OOMS,
  NUM_DEVICE_ALLOC, NUM_ALLOC_RETRIES,
} from "../stats";
import { CachingAllocator } from "../caching/caching";
import { releaseCachedBlocks } from "../caching/release";
import { NO_HANDLE_BLOCK } from "../policy";
import { SegmentLog, ACTION_SEGMENT_ALLOC } from "../../replay/segment-log";
import { VmsConfig } from "./config";
import { VmsSegment, CHUNK_BYTES } from "./segment";
import { Stitch, STITCH_PENDING } from "./stitched-view";
import { newPBlock, takePBlock, freePBlock } from "./physical-blocks";
import {
  stitchBlocks, reuseStitch, releaseStitch, collectStitches, collectCandidates, stitchEligible,
  findReusable,
} from "./stitch-operations";
import { releaseFreeSegments } from "./release";
import { brokenVmsInvariant, brokenVmsLocalInvariant, addVmsStats } from "./valid";

/** Counters of what the policy did (Policy.counter), in this order. */
export const VMS_COUNTER_NAMES: StaticArray<string> = ["stitches", "stitchReuses", "stitchesCollected", "reAllocs", "liveStitches"];

export class VmsPolicy extends CachingAllocator {
  vms: VmsConfig;
  vsegs: Array<VmsSegment | null> = new Array<VmsSegment | null>();
  liveSegments: i32 = 0;
  stitches: Array<Stitch | null> = new Array<Stitch | null>();
  liveStitches: i32 = 0;
  /** free pBlocks (the pPool), a free-set ordered (stream, size, address) */
  pFree: i32 = NO_BLOCK;
  /** reusable cached views (the sPool), ordered (stream, size, address) */
  sFree: i32 = NO_BLOCK;
  /** the release list of cached views (stitch ids), oldest and newest */
  oldestCached: i32 = -1;
  newestCached: i32 = -1;
  releaseClock: i64 = 0;
  /** bytes of the live views' ranges: GMLake's total_fuse_size, kept exact (autoGC's measure) */
  stitchedBytes: u64 = 0;
  stitchesMade: i64 = 0;
  stitchReuses: i64 = 0;
  /** cached views dropped: by GC, or because a release took their chunks */
  stitchesCollected: i64 = 0;
  reAllocs: i64 = 0;
  /** scratch for stitch candidate selection */
  candidates: Array<i32> = new Array<i32>();

  constructor(device: Device, log: SegmentLog, conf: AllocatorConfig, vms: VmsConfig) {
    super(device, log, conf);
    this.vms = vms;
  }

  @inline vseg(id: i32): VmsSegment {
    return changetype<VmsSegment>(unchecked(this.vsegs[id]));
  }

  @inline stitch(id: i32): Stitch {
    return changetype<Stitch>(unchecked(this.stitches[id]));
  }

  /** GMLake rounds a large request up to whole chunks [2.3]. */
  @inline largeSize(rounded: u64): u64 {
    return ((rounded + CHUNK_BYTES - 1) / CHUNK_BYTES) * CHUNK_BYTES;
  }

  // ---- malloc [2.4] ---------------------------------------------------------------------------

  malloc(requestBytes: u64, stream: i32): i32 {
    const rounded = roundSize(this.conf, requestBytes);
    if (isSmallSize(rounded)) return super.malloc(requestBytes, stream);
    const size = this.largeSize(rounded);
    let b = this.takeBestFit(stream, size);
    if (b == NO_BLOCK) b = reuseStitch(this, stream, size);
    if (b == NO_BLOCK && this.vms.defragLevel <= 0) b = stitchBlocks(this, stream, size, true);
    if (b == NO_BLOCK) b = this.grow(stream, size);
    if (b == NO_BLOCK && this.vms.defragLevel <= 1) b = stitchBlocks(this, stream, size, true);
    if (b == NO_BLOCK && this.releaseAllCached()) {
      this.stats.count(NUM_ALLOC_RETRIES);
      b = this.grow(stream, size);
    }
    if (b == NO_BLOCK && this.vms.defragLevel <= 2) b = stitchBlocks(this, stream, size, true);
    if (b == NO_BLOCK) {
      this.stats.count(NUM_OOMS);
      return NO_HANDLE_BLOCK;
    }
    this.account(b, requestBytes);
    return b;
  }

  /** pPool best fit under PyTorch's oversize rules [2.5]; the block is taken (split). */
  takeBestFit(stream: i32, size: u64): i32 {
    const b = this.bestFit(stream, size);
    return b == NO_BLOCK ? NO_BLOCK : takePBlock(this, b, size);
  }

  bestFit(stream: i32, size: u64): i32 {
    const b = lowerBound(BY_SIZE, this.pFree, stream, size, 0);
    if (b == NO_BLOCK || bStream(b) != stream) return NO_BLOCK;
    const maxSplit = this.conf.maxSplitSizeBytes;
    if (size < maxSplit && bSize(b) >= maxSplit) return NO_BLOCK;
    if (size >= maxSplit && bSize(b) >= size + this.conf.maxNonSplitRoundingBytes) return NO_BLOCK;
    return b;
  }

  /**
   * realloc_block [2.7]: a new segment for the request, its front taken. With reAlloc, when the
   * stream's free pBlocks cover part of a stitchable request, only the shortfall is created and
   * stitched with them.
   */
  grow(stream: i32, size: u64): i32 {
    if (this.vms.reAlloc > 0 && stitchEligible(this, size)) {
      const free = this.freeBytes(stream);
      if (free > 0 && free < size) {
        if (this.newSegment(stream, allocationSize(this.conf, size - free)) == null) return NO_BLOCK;
        this.reAllocs++;
        // a shortfall under 10 MiB still gets a 20 MiB segment, which may hold the request alone
        const b = this.takeBestFit(stream, size);
        if (b != NO_BLOCK) return b;
        const stitched = stitchBlocks(this, stream, size, false);
        if (stitched != NO_BLOCK) return stitched;
      }
    }
    const seg = this.newSegment(stream, allocationSize(this.conf, size));
    if (seg == null) return NO_BLOCK;
    return takePBlock(this, seg.head, size);
  }

  /** Bytes of the stream's free pBlocks. */
  freeBytes(stream: i32): u64 {
    let sum: u64 = 0;
    collectCandidates(this, stream, U64.MAX_VALUE);
    for (let k = 0; k < this.candidates.length; k++) sum += bSize(unchecked(this.candidates[k]));
    return sum;
  }

  /** A new segment of `bytes` whose one free pBlock is in the pPool; null when memory is short. */
  newSegment(stream: i32, bytes: u64): VmsSegment | null {
    if (!this.withinFraction(this.totalAllocatedBytes, bytes)) return null;
    const seg = new VmsSegment(this.vsegs.length, stream, <i32>(bytes / CHUNK_BYTES));
    if (!seg.create(this.device)) return null;
    this.vsegs.push(seg);
    this.liveSegments++;
    this.totalAllocatedBytes += bytes;
    this.stats.increase(STAT_SEGMENT, false, 1);
    this.stats.increase(STAT_RESERVED_BYTES, false, bytes);
    this.stats.count(NUM_DEVICE_ALLOC);
    this.log.record(ACTION_SEGMENT_ALLOC, seg.base, bytes);
    const head = newPBlock(seg, seg.base, bytes);
    seg.head = head;
    this.pFree = setInsert(BY_SIZE, this.pFree, head);
    return seg;
  }

  /** The block is the caller's: flags and the stats an allocation moves. */
  account(b: i32, requestBytes: u64): void {
    setFlag(b, FLAG_ALLOCATED, true);
    setRequested(b, requestBytes);
    this.countAllocation(b, false, requestBytes);
  }

  mallocWouldRelease(requestBytes: u64, stream: i32): bool {
    const rounded = roundSize(this.conf, requestBytes);
    if (isSmallSize(rounded)) return super.mallocWouldRelease(requestBytes, stream);
    const size = this.largeSize(rounded);
    if (this.bestFit(stream, size) != NO_BLOCK) return false;
    if (this.vms.vmmDefragment > 0 && findReusable(this, stream, size) != NO_BLOCK) return false;
    const stitchable = stitchEligible(this, size) && collectCandidates(this, stream, size);
    if (stitchable && this.vms.defragLevel <= 0) return false;
    const bytes = allocationSize(this.conf, size);
    const fits = this.withinFraction(this.totalAllocatedBytes, bytes) && this.device.canAllocate(bytes);
    if (fits) return false;
    return !(stitchable && this.vms.defragLevel <= 1);
  }

  // ---- free [2.8] -----------------------------------------------------------------------------

  freeRequest(handle: i32): void {
    super.freeRequest(handle);
    if (hasFlag(handle, FLAG_STITCHED)) this.stitchOf(handle).state = STITCH_PENDING;
  }

  /** free_block for every pool: the small pool's blocks go to the caching allocator. */
  freeBlock(block: i32): void {
    if (!hasFlag(block, FLAG_VMS)) {
      super.freeBlock(block);
      return;
    }
    this.stats.decrease(STAT_ACTIVE, false, 1);
    this.stats.decrease(STAT_ACTIVE_BYTES, false, bSize(block));
    this.stats.decrease(STAT_REQUESTED_BYTES, false, bRequested(block));
    setBlockTraceId(block, -1);
    if (hasFlag(block, FLAG_STITCHED)) releaseStitch(this, block);
    else freePBlock(this, block);
  }

  @inline stitchOf(block: i32): Stitch {
    return this.stitch(bOwner(block));
  }

  // ---- giving memory back [2.9] ---------------------------------------------------------------

  /** empty_cache: what release_cached_blocks gives back, then every cached view (GC, full pass). */
  emptyCache(): void {
    this.releaseAllCached();
    collectStitches(this, 0);
  }

  /**
   * release_cached_blocks: the small pool as PyTorch does it, then every segment that holds
   * nothing (dropping only the views over its chunks: the others stay cached for reuse).
   */
  releaseAllCached(): bool {
    releaseCachedBlocks(this);
    releaseFreeSegments(this);
    return true;
  }

  // ---- the rest of the Policy interface --------------------------------------------------------

  brokenInvariant(): i32 {
    const broken = brokenVmsInvariant(this);
    return broken != 0 ? broken : super.brokenInvariant();
  }

  brokenLocalInvariant(): i32 {
    const broken = brokenVmsLocalInvariant(this);
    return broken != 0 ? broken : super.brokenLocalInvariant();
  }

  foreignReservations(): i32 {
    return this.liveSegments + this.liveStitches;
  }

  addForeignStats(): void {
    addVmsStats(this);
  }

  counter(i: i32): f64 {
    switch (i) {
      case 0: return <f64>this.stitchesMade;
      case 1: return <f64>this.stitchReuses;
      case 2: return <f64>this.stitchesCollected;
      case 3: return <f64>this.reAllocs;
      case 4: return <f64>this.liveStitches;
    }
    return 0;
  }

  // A trace recorded mid-run: live blocks are placed afresh in snapshot order (as lakebed does);
  // the recorded segments' shapes are the caching allocator's, which vms would not have made.
  private adoptStream: i32 = 0;

  adoptSegment(address: u64, stream: i32, small: bool, expandable: bool): void {
    this.adoptStream = stream;
  }

  adoptBlock(address: u64, size: u64, requested: u64, state: u8, traceId: i32): i32 {
    return this.adoptAfresh(requested, state, traceId, this.adoptStream);
  }

  adoptDone(): void {}
}
