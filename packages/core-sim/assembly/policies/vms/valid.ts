// The vms policy's isValid for its own structures, at two levels: the whole walk over the
// segments, the pBlocks, the stitched views, the pools and the release list, recomputing what the
// policy keeps incrementally and checking the numbered invariants at the top of vms.ts; and the
// local check of what the last events changed (below). Each returns 100 + the number of the
// first broken one, 0 when all hold. The small pool and the shared stats are checked after this,
// by the caching allocator's walk (../caching/valid.ts), with addVmsStats adding the segments.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, FLAG_LENT, FLAG_VMS, FLAG_STITCHED, FLAG_IN_TREE, bAddr,
  bSize, bEnd, bPrev, bNext, bLeft, bRight, bStream, bOwner, hasFlag, isLive, blockIdBound,
} from "../../memory/block-table";
import { BY_SIZE, setWellFormed } from "../../memory/free-set";
import { STAT_SEGMENT, STAT_RESERVED_BYTES } from "../stats";
import { SimulatedDevice } from "../../device/simulated";
import { CHUNK_BYTES, VmsSegment } from "./segment";
import { Stitch, NO_STITCH, STITCH_ACTIVE, STITCH_PENDING, STITCH_REUSABLE } from "./stitched-view";
import { VmsPolicy } from "./vms";
import { pIsFree, chunkCount } from "./physical-blocks";
import { addRecomputed } from "../caching/valid";
import { distinctChanges, changedBlock } from "../../memory/changed-blocks";
import { linkedInChain } from "../../memory/block-links";

export const VMS_INVARIANT_BASE: i32 = 100;
const INV_TILING: i32 = VMS_INVARIANT_BASE + 1;
const INV_PPOOL: i32 = VMS_INVARIANT_BASE + 2;
const INV_ONE_HOLDER: i32 = VMS_INVARIANT_BASE + 3;
const INV_VIEWS: i32 = VMS_INVARIANT_BASE + 4;
const INV_VIEW_STATE: i32 = VMS_INVARIANT_BASE + 5;
const INV_ACCOUNTING: i32 = VMS_INVARIANT_BASE + 6;

let epoch: i32 = 0;
let viewStamp: i32 = 0;
// what the segment walk found, for the view walk to match
let lentChunks: i32 = 0;
let freePBlocks: i32 = 0;
let chainBlocks: i32 = 0;

export function brokenVmsInvariant(p: VmsPolicy): i32 {
  epoch++;
  const segs = checkSegments(p);
  if (segs != 0) return segs;
  const views = checkViews(p);
  if (views != 0) return views;
  return checkAccounting(p);
}

/** INV-VMS-1, 2: every segment's chain, the pPool, and no stray pBlock record. */
function checkSegments(p: VmsPolicy): i32 {
  lentChunks = 0;
  freePBlocks = 0;
  chainBlocks = 0;
  let segments = 0;
  for (let i = 0; i < p.vsegs.length; i++) {
    const seg = unchecked(p.vsegs[i]);
    if (seg == null) continue;
    segments++;
    const broken = checkChain(seg);
    if (broken != 0) return broken;
  }
  if (segments != p.liveSegments) return INV_ACCOUNTING;
  let records = 0;
  let stitched = 0;
  const bound = blockIdBound();
  for (let b = 0; b < bound; b++) {
    if (!isLive(b) || !hasFlag(b, FLAG_VMS)) continue;
    if (hasFlag(b, FLAG_STITCHED)) stitched++;
    else records++;
  }
  if (records != chainBlocks) return INV_TILING;
  if (stitched != p.liveStitches) return INV_VIEWS;
  if (treeMembers(p.pFree, false) != freePBlocks || !setWellFormed(BY_SIZE, p.pFree)) return INV_PPOOL;
  return 0;
}

function checkChain(seg: VmsSegment): i32 {
  let at = seg.base;
  let prev = NO_BLOCK;
  let b = seg.head;
  if (b == NO_BLOCK || bPrev(b) != NO_BLOCK) return INV_TILING;
  while (b != NO_BLOCK) {
    const size = bSize(b);
    if (!isLive(b) || !hasFlag(b, FLAG_VMS) || hasFlag(b, FLAG_STITCHED) || bOwner(b) != seg.id ||
        bStream(b) != seg.stream || bAddr(b) != at || size == 0 || size % CHUNK_BYTES != 0 || bPrev(b) != prev) {
      return INV_TILING;
    }
    const first = seg.chunkOf(at);
    const n = chunkCount(b);
    if (first + n > seg.chunks) return INV_TILING;
    for (let c = first; c < first + n; c++) if (unchecked(seg.owner[c]) != b) return INV_TILING;
    if (pIsFree(b)) {
      freePBlocks++;
      if (!hasFlag(b, FLAG_IN_TREE) || (prev != NO_BLOCK && pIsFree(prev))) return INV_PPOOL;
    } else if (hasFlag(b, FLAG_IN_TREE)) {
      return INV_PPOOL;
    }
    if (hasFlag(b, FLAG_LENT)) {
      if (hasFlag(b, FLAG_ALLOCATED | FLAG_PENDING)) return INV_ONE_HOLDER;
      lentChunks += n;
    }
    chainBlocks++;
    at += size;
    prev = b;
    b = bNext(b);
  }
  return at == seg.base + seg.bytes() ? 0 : INV_TILING;
}

/** Members of a free-set subtree, or -1 when one is not a vms record of the given kind. */
function treeMembers(t: i32, stitched: bool): i32 {
  if (t == NO_BLOCK) return 0;
  if (!isLive(t) || !hasFlag(t, FLAG_VMS) || hasFlag(t, FLAG_STITCHED) != stitched) return -1;
  if (!stitched && !pIsFree(t)) return -1;
  const l = treeMembers(bLeft(t), stitched);
  const r = treeMembers(bRight(t), stitched);
  if (l < 0 || r < 0) return -1;
  return 1 + l + r;
}

/** INV-VMS-3, 4, 5: every view, its chunks and state, the sPool and the release list. */
function checkViews(p: VmsPolicy): i32 {
  const simulated = p.device instanceof SimulatedDevice ? changetype<SimulatedDevice>(p.device) : null;
  let usedPositions = 0;
  let mappedPositions = 0;
  let reusable = 0;
  let cached = 0;
  let views = 0;
  let stitchedBytes: u64 = 0;
  for (let i = 0; i < p.stitches.length; i++) {
    const st = unchecked(p.stitches[i]);
    if (st == null) continue;
    views++;
    stitchedBytes += st.vaBytes;
    const state = checkViewState(st);
    if (state != 0) return state;
    if (st.cached()) cached++;
    if (st.state == STITCH_REUSABLE) reusable++;
    const chunks = checkViewChunks(p, st, simulated);
    if (chunks != 0) return chunks;
    usedPositions += st.used;
    mappedPositions += st.count;
  }
  if (views != p.liveStitches || stitchedBytes != p.stitchedBytes) return INV_ACCOUNTING;
  if (usedPositions != lentChunks) return INV_ONE_HOLDER;
  // each view's chunks list it (checked per chunk); equal totals leave no stray mapper
  let listed = 0;
  for (let i = 0; i < p.vsegs.length; i++) {
    const seg = unchecked(p.vsegs[i]);
    if (seg == null) continue;
    for (let c = 0; c < seg.chunks; c++) listed += seg.viewCount(c);
  }
  if (listed != mappedPositions) return INV_VIEWS;
  if (treeMembers(p.sFree, true) != reusable || !setWellFormed(BY_SIZE, p.sFree)) return INV_VIEW_STATE;
  return checkReleaseList(p, cached);
}

function checkViewState(st: Stitch): i32 {
  const b = st.block;
  if (!isLive(b) || !hasFlag(b, FLAG_VMS) || !hasFlag(b, FLAG_STITCHED) || bOwner(b) != st.id ||
      bAddr(b) != st.va || bStream(b) != st.stream) {
    return INV_VIEWS;
  }
  const allocated = hasFlag(b, FLAG_ALLOCATED);
  const pending = hasFlag(b, FLAG_PENDING);
  if (st.used > st.count || st.freeChunks < 0) return INV_VIEWS;
  if (st.state == STITCH_ACTIVE || st.state == STITCH_PENDING) {
    if (allocated != (st.state == STITCH_ACTIVE) || pending != (st.state == STITCH_PENDING)) return INV_VIEW_STATE;
    if (st.used == 0 || bSize(b) != <u64>st.used * CHUNK_BYTES || hasFlag(b, FLAG_IN_TREE)) return INV_VIEW_STATE;
    return 0;
  }
  if (allocated || pending || st.used != 0 || st.toGC || bSize(b) != st.bytes()) return INV_VIEW_STATE;
  if ((st.state == STITCH_REUSABLE) != (st.freeChunks == st.count)) return INV_VIEW_STATE;
  if (hasFlag(b, FLAG_IN_TREE) != (st.state == STITCH_REUSABLE)) return INV_VIEW_STATE;
  return 0;
}

function checkViewChunks(p: VmsPolicy, st: Stitch, simulated: SimulatedDevice | null): i32 {
  const stamp = ++viewStamp;
  let free = 0;
  for (let i = 0; i < st.count; i++) {
    const segId = unchecked(st.segs[i]);
    if (segId < 0 || segId >= p.vsegs.length || unchecked(p.vsegs[segId]) == null) return INV_VIEWS;
    const seg = p.vseg(segId);
    const idx = unchecked(st.idxs[i]);
    if (idx < 0 || idx >= seg.chunks || unchecked(seg.seen[idx]) == stamp) return INV_VIEWS;
    unchecked((seg.seen[idx] = stamp));
    const list = unchecked(seg.views[idx]);
    if (list == null || !list.includes(st.id)) return INV_VIEWS;
    const owner = unchecked(seg.owner[idx]);
    if (pIsFree(owner)) free++;
    if (i < st.used) {
      if (!hasFlag(owner, FLAG_LENT) || unchecked(seg.claimed[idx]) == epoch) return INV_ONE_HOLDER;
      unchecked((seg.claimed[idx] = epoch));
    }
    if (simulated) {
      const m = simulated.mappings.indexOf(st.va + <u64>i * CHUNK_BYTES);
      if (m < 0 || simulated.mappings.tag(m) != unchecked(seg.handles[idx])) return INV_VIEWS;
    }
  }
  return free == st.freeChunks ? 0 : INV_VIEWS;
}

function checkReleaseList(p: VmsPolicy, cached: i32): i32 {
  let n = 0;
  let prev = NO_STITCH;
  let lastSeq: i64 = -1;
  for (let id = p.oldestCached; id != NO_STITCH; id = p.stitch(id).newer) {
    if (id < 0 || id >= p.stitches.length || unchecked(p.stitches[id]) == null) return INV_VIEW_STATE;
    const st = p.stitch(id);
    if (!st.cached() || st.older != prev || st.releaseSeq <= lastSeq || ++n > cached) return INV_VIEW_STATE;
    lastSeq = st.releaseSeq;
    prev = id;
  }
  return n == cached && p.newestCached == prev ? 0 : INV_VIEW_STATE;
}

/** INV-VMS-6: the device holds what the policy thinks it holds. */
function checkAccounting(p: VmsPolicy): i32 {
  const simulated = p.device instanceof SimulatedDevice ? changetype<SimulatedDevice>(p.device) : null;
  if (simulated && simulated.physicalBytes != p.totalAllocatedBytes) return INV_ACCOUNTING;
  return 0;
}

/** The segments and reserved bytes of the live segments, for the caching walk's stats check. */
export function addVmsStats(p: VmsPolicy): void {
  for (let i = 0; i < p.vsegs.length; i++) {
    const seg = unchecked(p.vsegs[i]);
    if (seg == null) continue;
    addRecomputed(STAT_SEGMENT, false, 1);
    addRecomputed(STAT_RESERVED_BYTES, false, <i64>seg.bytes());
  }
}

// ---- the local check ---------------------------------------------------------------------------
// After every event, the invariants of what the event changed (memory/changed-blocks.ts): each
// changed pBlock and its two neighbours against INV-VMS-1 and 2 (its place in its segment, the
// chunks it owns, its pool membership), each changed view against INV-VMS-3, 4 and 5 (its state,
// and each of its chunks: listed, mapped by the device, held by a lent pBlock and by no other view
// checked now), and INV-VMS-6's device bytes. The small pool and the shared stats get the caching
// allocator's local check after this. What needs every record (the pools' shape and counts, the
// release list, the count of mappers, one chain per record) is left to the whole walk, which the
// caller runs every N events and at the end. O(changed blocks + chunks of changed views).

export function brokenVmsLocalInvariant(p: VmsPolicy): i32 {
  epoch++;
  const simulated = p.device instanceof SimulatedDevice ? changetype<SimulatedDevice>(p.device) : null;
  const n = distinctChanges();
  for (let i = 0; i < n; i++) {
    const b = changedBlock(i);
    if (!isLive(b) || !hasFlag(b, FLAG_VMS)) continue;
    let broken: i32 = 0;
    if (hasFlag(b, FLAG_STITCHED)) {
      broken = brokenView(p, b, simulated);
    } else {
      broken = brokenPBlock(p, b);
      if (broken == 0 && bPrev(b) != NO_BLOCK) broken = brokenPBlock(p, bPrev(b));
      if (broken == 0 && bNext(b) != NO_BLOCK) broken = brokenPBlock(p, bNext(b));
    }
    if (broken != 0) return broken;
  }
  return checkAccounting(p);
}

/** INV-VMS-1, 2 at pBlock b: its place in its segment's chain, its chunks, its pool membership. */
function brokenPBlock(p: VmsPolicy, b: i32): i32 {
  if (!isLive(b) || !hasFlag(b, FLAG_VMS) || hasFlag(b, FLAG_STITCHED)) return INV_TILING;
  const id = bOwner(b);
  if (id < 0 || id >= p.vsegs.length || unchecked(p.vsegs[id]) == null) return INV_TILING;
  const seg = p.vseg(id);
  const size = bSize(b);
  const end = seg.base + seg.bytes();
  if (bStream(b) != seg.stream || size == 0 || size % CHUNK_BYTES != 0 || bAddr(b) < seg.base || bEnd(b) > end) return INV_TILING;
  if (!linkedInChain(b, seg.head, seg.base, end)) return INV_TILING;
  const prev = bPrev(b);
  const next = bNext(b);
  const first = seg.chunkOf(bAddr(b));
  const chunks = chunkCount(b);
  for (let c = first; c < first + chunks; c++) if (unchecked(seg.owner[c]) != b) return INV_TILING;
  if (pIsFree(b)) {
    if (!hasFlag(b, FLAG_IN_TREE)) return INV_PPOOL;
    if ((prev != NO_BLOCK && pIsFree(prev)) || (next != NO_BLOCK && pIsFree(next))) return INV_PPOOL;
  } else if (hasFlag(b, FLAG_IN_TREE)) {
    return INV_PPOOL;
  }
  if (hasFlag(b, FLAG_LENT) && hasFlag(b, FLAG_ALLOCATED | FLAG_PENDING)) return INV_ONE_HOLDER;
  return 0;
}

/** INV-VMS-3, 4, 5 at the view whose record is b. */
function brokenView(p: VmsPolicy, b: i32, simulated: SimulatedDevice | null): i32 {
  const id = bOwner(b);
  if (id < 0 || id >= p.stitches.length || unchecked(p.stitches[id]) == null) return INV_VIEWS;
  const st = p.stitch(id);
  if (st.block != b) return INV_VIEWS;
  const state = checkViewState(st);
  return state != 0 ? state : checkViewChunks(p, st, simulated);
}
