// vms stitching (GMLake's get_fused_fragmented_blocks), reuse of cached stitched views (the sPool
// half of get_free_block), the free of a stitched view (update_block), and their garbage
// collection (garbage_collect_fused_blocks), over the views of stitched-view.ts.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, FLAG_VMS, FLAG_STITCHED, FLAG_LENT, newBlock, deleteBlock,
  bSize, setSize, bStream, bOwner, setOwner, hasFlag, setFlag,
} from "../../memory/block-table";
import { BY_SIZE, setInsert, setErase, lowerBound, predecessor, last } from "../../memory/free-set";
import { CHUNK_BYTES, VmsSegment } from "./segment";
import {
  Stitch, NO_STITCH, STITCH_ACTIVE, STITCH_REUSABLE, STITCH_FRAGMENTED,
} from "./stitched-view";
import { VmsPolicy } from "./vms";
import { bAddr } from "../../memory/block-table";
import { chunkCount, lendChunks, freePBlock } from "./physical-blocks";
import { ACTION_SEGMENT_MAP, ACTION_SEGMENT_UNMAP } from "../../replay/segment-log";
import { BROKEN, BROKEN_VMS_STITCH_FORGETS_CHUNK } from "../broken";

/**
 * GMLake's candidate selection: the stream's free pBlocks, largest first, until they add up to
 * `size` (an oversize block is skipped for a request below max_split_size, as best fit skips
 * it). Fills p.candidates; true when at least two of them cover the request.
 */
export function collectCandidates(p: VmsPolicy, stream: i32, size: u64): bool {
  const candidates = p.candidates;
  candidates.length = 0;
  const maxSplit = p.conf.maxSplitSizeBytes;
  let sum: u64 = 0;
  const above = lowerBound(BY_SIZE, p.pFree, stream + 1, 0, 0);
  let it = above == NO_BLOCK ? last(p.pFree) : predecessor(BY_SIZE, p.pFree, above);
  while (it != NO_BLOCK && bStream(it) == stream && sum < size) {
    if (!(size < maxSplit && bSize(it) >= maxSplit)) {
      candidates.push(it);
      sum += bSize(it);
    }
    it = predecessor(BY_SIZE, p.pFree, it);
  }
  return sum >= size && candidates.length >= 2;
}

/** May a request of `size` be stitched at all (vmmDefragment, fragLimit)? */
@inline export function stitchEligible(p: VmsPolicy, size: u64): bool {
  return p.vms.vmmDefragment > 0 && size >= p.vms.fragLimitBytes;
}

/**
 * Stitches free pBlocks into one view of `size` bytes (a multiple of 2 MiB): the candidates are
 * lent whole, the last (smallest) only in the part the request needs, its overshoot split off and
 * left free. Returns the view's block, or NO_BLOCK.
 */
export function stitchBlocks(p: VmsPolicy, stream: i32, size: u64, checkLimit: bool): i32 {
  if (checkLimit && !stitchEligible(p, size)) return NO_BLOCK;
  if (!collectCandidates(p, stream, size)) return NO_BLOCK;
  const chunks = <i32>(size / CHUNK_BYTES);
  const st = new Stitch(p.stitches.length, stream, chunks);
  let pos = 0;
  const candidates = p.candidates;
  for (let k = 0; k < candidates.length; k++) {
    const b = unchecked(candidates[k]);
    const seg = p.vseg(bOwner(b));
    const first = seg.chunkOf(bAddr(b));
    const take = min(chunkCount(b), chunks - pos);
    lendChunks(p, seg, first, first + take - (BROKEN == BROKEN_VMS_STITCH_FORGETS_CHUNK && take > 1 && pos + take == chunks ? 1 : 0)); // broken.ts
    for (let i = 0; i < take; i++) {
      unchecked((st.segs[pos] = seg.id));
      unchecked((st.idxs[pos] = first + i));
      pos++;
    }
  }
  st.used = chunks;
  if (!st.map(p.device, p.vsegs)) {
    giveBackPrefix(p, st);
    return NO_BLOCK;
  }
  // the segment log shows a view's range coming and going (no physical memory: reserved stays)
  p.log.record(ACTION_SEGMENT_MAP, st.va, st.vaBytes);
  p.stitches.push(st);
  p.liveStitches++;
  for (let i = 0; i < chunks; i++) p.vseg(unchecked(st.segs[i])).addView(unchecked(st.idxs[i]), st.id);
  const block = newBlock(st.va, st.bytes(), stream, false, -1);
  setFlag(block, FLAG_VMS | FLAG_STITCHED, true);
  setOwner(block, st.id);
  st.block = block;
  p.stitchedBytes += st.vaBytes;
  p.stitchesMade++;
  if (p.stitchedBytes > p.vms.autoGCBytes) collectStitches(p, p.vms.autoGCBytes);
  return block;
}

/**
 * sPool reuse: the smallest cached reusable view of the stream that holds `size`, unless it is
 * more than reuseLimit times the request. Only the first size / 2 MiB chunks are claimed; the tail
 * stays free for others. Returns the view's block, or NO_BLOCK.
 */
export function reuseStitch(p: VmsPolicy, stream: i32, size: u64): i32 {
  if (p.vms.vmmDefragment <= 0) return NO_BLOCK;
  const r = findReusable(p, stream, size);
  if (r == NO_BLOCK) return NO_BLOCK;
  const st = p.stitch(bOwner(r));
  p.sFree = setErase(BY_SIZE, p.sFree, r);
  unlinkRelease(p, st);
  st.state = STITCH_ACTIVE;
  st.used = <i32>(size / CHUNK_BYTES);
  claimPrefix(p, st);
  setSize(r, size);
  p.stitchReuses++;
  return r;
}

/** The reusable view reuseStitch would take, or NO_BLOCK (asks without changing anything). */
export function findReusable(p: VmsPolicy, stream: i32, size: u64): i32 {
  const r = lowerBound(BY_SIZE, p.sFree, stream, size, 0);
  if (r == NO_BLOCK || bStream(r) != stream) return NO_BLOCK;
  if (<f64>bSize(r) > <f64>size * p.vms.reuseLimit) return NO_BLOCK;
  return r;
}

/** Lends the chunks of the view's used prefix, one run of neighbouring chunks at a time. */
function claimPrefix(p: VmsPolicy, st: Stitch): void {
  let i = 0;
  while (i < st.used) {
    const segId = unchecked(st.segs[i]);
    const from = unchecked(st.idxs[i]);
    let j = i + 1;
    while (j < st.used && unchecked(st.segs[j]) == segId && unchecked(st.idxs[j]) == from + (j - i)) j++;
    lendChunks(p, p.vseg(segId), from, from + (j - i));
    i = j;
  }
}

/** The pBlocks lent to the view's used prefix go back to the pool. */
function giveBackPrefix(p: VmsPolicy, st: Stitch): void {
  for (let i = 0; i < st.used; i++) {
    const b = unchecked(p.vseg(unchecked(st.segs[i])).owner[unchecked(st.idxs[i])]);
    if (hasFlag(b, FLAG_LENT)) freePBlock(p, b);
  }
  st.used = 0;
}

/**
 * A stitched view's free completed (GMLake's update_block): its lent pBlocks return to the pool
 * (and merge there), while the view stays mapped and cached, so both views of the chunks exist;
 * whichever claims them first makes the other fragmented.
 */
export function releaseStitch(p: VmsPolicy, block: i32): void {
  const st = p.stitch(bOwner(block));
  giveBackPrefix(p, st);
  setFlag(block, FLAG_ALLOCATED | FLAG_PENDING, false);
  if (st.toGC) {
    destroyStitch(p, st);
    return;
  }
  setSize(block, st.bytes());
  st.releaseSeq = ++p.releaseClock;
  appendRelease(p, st);
  if (st.freeChunks == st.count) {
    st.state = STITCH_REUSABLE;
    p.sFree = setInsert(BY_SIZE, p.sFree, block);
  } else {
    st.state = STITCH_FRAGMENTED;
  }
}

export function makeReusable(p: VmsPolicy, st: Stitch): void {
  st.state = STITCH_REUSABLE;
  p.sFree = setInsert(BY_SIZE, p.sFree, st.block);
}

export function makeFragmented(p: VmsPolicy, st: Stitch): void {
  p.sFree = setErase(BY_SIZE, p.sFree, st.block);
  st.state = STITCH_FRAGMENTED;
}

function appendRelease(p: VmsPolicy, st: Stitch): void {
  st.older = p.newestCached;
  st.newer = NO_STITCH;
  if (p.newestCached != NO_STITCH) p.stitch(p.newestCached).newer = st.id;
  else p.oldestCached = st.id;
  p.newestCached = st.id;
}

function unlinkRelease(p: VmsPolicy, st: Stitch): void {
  if (st.older != NO_STITCH) p.stitch(st.older).newer = st.newer;
  else p.oldestCached = st.newer;
  if (st.newer != NO_STITCH) p.stitch(st.newer).older = st.older;
  else p.newestCached = st.older;
  st.older = NO_STITCH;
  st.newer = NO_STITCH;
}

/** Drops a cached (or toGC, just freed) view: its mappings, its reservation, its record. */
export function destroyStitch(p: VmsPolicy, st: Stitch): void {
  if (st.state == STITCH_REUSABLE) p.sFree = setErase(BY_SIZE, p.sFree, st.block);
  if (st.cached()) {
    unlinkRelease(p, st);
    p.stitchesCollected++;
  }
  for (let i = 0; i < st.count; i++) p.vseg(unchecked(st.segs[i])).removeView(unchecked(st.idxs[i]), st.id);
  st.unmapAll(p.device);
  p.log.record(ACTION_SEGMENT_UNMAP, st.va, st.vaBytes);
  p.stitchedBytes -= st.vaBytes;
  deleteBlock(st.block);
  unchecked((p.stitches[st.id] = null));
  p.liveStitches--;
}

/**
 * GMLake's StitchFree: drops cached views, oldest release first, fragmented ones (useless until
 * their chunks come back) before reusable ones, until the views' reserved bytes are at most
 * `targetBytes`. (GMLake's full pass drops every cached view; this stops at the target so that
 * autoGC keeps the newest views, the likeliest to be reused.) Returns the bytes dropped.
 */
export function collectStitches(p: VmsPolicy, targetBytes: u64): u64 {
  const before = p.stitchedBytes;
  for (let pass = 0; pass < 2; pass++) {
    const wanted = pass == 0 ? STITCH_FRAGMENTED : STITCH_REUSABLE;
    let id = p.oldestCached;
    while (id != NO_STITCH && p.stitchedBytes > targetBytes) {
      const st = p.stitch(id);
      id = st.newer;
      if (st.state != wanted) continue;
      destroyStitch(p, st);
    }
  }
  return before - p.stitchedBytes;
}

/**
 * A physical release takes chunks from under a view in use (they are in its free tail): the tail
 * is unmapped now and the view dropped when freed (GMLake's active_fused_blocks_to_gc).
 */
export function truncateStitch(p: VmsPolicy, st: Stitch): void {
  for (let i = st.used; i < st.count; i++) {
    const seg = p.vseg(unchecked(st.segs[i]));
    const idx = unchecked(st.idxs[i]);
    seg.removeView(idx, st.id);
    if (!hasFlag(unchecked(seg.owner[idx]), FLAG_ALLOCATED | FLAG_PENDING | FLAG_LENT)) st.freeChunks--;
  }
  const tail = st.va + <u64>st.used * CHUNK_BYTES;
  const tailBytes = <u64>(st.count - st.used) * CHUNK_BYTES;
  st.unmapFrom(p.device, st.used);
  if (tailBytes > 0) p.log.record(ACTION_SEGMENT_UNMAP, tail, tailBytes);
  st.toGC = true;
}
