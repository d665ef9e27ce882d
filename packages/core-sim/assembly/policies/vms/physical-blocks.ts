// vms pBlocks: the blocks that own physical chunks, tiling their segment (segment.ts) at 2 MiB
// granularity. A pBlock is free (in the policy's pPool), allocated or pending (a caller's), or
// lent (its chunks are the used prefix of a stitched view). Every change of a chunk between free
// and used goes through chunksChanged, which updates every stitched view mapping it: the one
// routine GMLake repeats in several loops.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, FLAG_LENT, FLAG_VMS, newBlock, deleteBlock, bAddr, bSize,
  setSize, setAddr, bPrev, bNext, setPrev, setNext, bOwner, setOwner, hasFlag, setFlag,
} from "../../memory/block-table";
import { BY_SIZE, setInsert, setErase } from "../../memory/free-set";
import { splitBack, absorbNeighbour } from "../../memory/block-links";
import { CHUNK_BYTES, VmsSegment } from "./segment";
import { STITCH_REUSABLE, STITCH_FRAGMENTED } from "./stitched-view";
import { VmsPolicy } from "./vms";
import { makeReusable, makeFragmented } from "./stitch-operations";

/** A pBlock whose chunks are free: neither a caller's nor lent. */
@inline export function pIsFree(b: i32): bool {
  return !hasFlag(b, FLAG_ALLOCATED | FLAG_PENDING | FLAG_LENT);
}

@inline export function chunkCount(b: i32): i32 {
  return <i32>(bSize(b) / CHUNK_BYTES);
}

/** A new pBlock record over [addr, addr + bytes) of segment `seg`, holding its chunks. */
export function newPBlock(seg: VmsSegment, addr: u64, bytes: u64): i32 {
  const b = newBlock(addr, bytes, seg.stream, false, -1);
  setFlag(b, FLAG_VMS, true);
  setOwner(b, seg.id);
  const first = seg.chunkOf(addr);
  seg.setOwner(first, first + <i32>(bytes / CHUNK_BYTES), b);
  return b;
}

/**
 * Chunks [from, to) of `seg` became free (or used): every stitched view mapping one of them
 * counts it, and a cached view moves between the reusable pool and the fragmented state.
 */
export function chunksChanged(p: VmsPolicy, seg: VmsSegment, from: i32, to: i32, nowFree: bool): void {
  for (let c = from; c < to; c++) {
    const list = unchecked(seg.views[c]);
    if (list == null) continue;
    for (let k = 0; k < list.length; k++) {
      const st = p.stitch(unchecked(list[k]));
      if (nowFree) {
        st.freeChunks++;
        if (st.state == STITCH_FRAGMENTED && st.freeChunks == st.count) makeReusable(p, st);
      } else {
        if (st.state == STITCH_REUSABLE) makeFragmented(p, st);
        st.freeChunks--;
      }
    }
  }
}

/** Splits pBlock b at chunk `at` of its segment; returns the new record for the back part. */
export function splitAt(seg: VmsSegment, b: i32, at: i32): i32 {
  const addr = seg.chunkAddress(at);
  const back = newPBlock(seg, addr, bAddr(b) + bSize(b) - addr);
  splitBack(b, back, addr);
  return back;
}

/**
 * Takes the free pBlock b for a request of `size` bytes: out of the pool, the remainder split
 * off (GMLake splits when at least 2 MiB remain and the request is below max_split_size), its
 * chunks now used. Returns b, still to be marked allocated or lent by the caller.
 */
export function takePBlock(p: VmsPolicy, b: i32, size: u64): i32 {
  const seg = p.vseg(bOwner(b));
  p.pFree = setErase(BY_SIZE, p.pFree, b);
  if (bSize(b) - size >= CHUNK_BYTES && size < p.conf.maxSplitSizeBytes) {
    const back = splitAt(seg, b, seg.chunkOf(bAddr(b) + size));
    p.pFree = setInsert(BY_SIZE, p.pFree, back);
  }
  const first = seg.chunkOf(bAddr(b));
  chunksChanged(p, seg, first, first + chunkCount(b), false);
  return b;
}

/**
 * Lends chunks [from, to) of `seg` to a stitched view: they are free and, free neighbours being
 * merged, lie in one free pBlock; that pBlock is cut so that exactly [from, to) is lent (GMLake's
 * re-splitting of partly claimed owners). Returns the lent pBlock.
 */
export function lendChunks(p: VmsPolicy, seg: VmsSegment, from: i32, to: i32): i32 {
  let b = unchecked(seg.owner[from]);
  assert(pIsFree(b), "vms: lending a chunk that is in use");
  p.pFree = setErase(BY_SIZE, p.pFree, b);
  const start = seg.chunkOf(bAddr(b));
  const end = start + chunkCount(b);
  assert(to <= end, "vms: a run of free chunks spans two pBlocks");
  if (start < from) {
    const front = b;
    b = splitAt(seg, front, from);
    p.pFree = setInsert(BY_SIZE, p.pFree, front);
  }
  if (to < end) p.pFree = setInsert(BY_SIZE, p.pFree, splitAt(seg, b, to));
  setFlag(b, FLAG_LENT, true);
  chunksChanged(p, seg, from, to, false);
  return b;
}

/** A pBlock comes back (a caller's free completed, or its stitched view let go): merge, pool. */
export function freePBlock(p: VmsPolicy, b: i32): void {
  const seg = p.vseg(bOwner(b));
  setFlag(b, FLAG_ALLOCATED | FLAG_PENDING | FLAG_LENT, false);
  const first = seg.chunkOf(bAddr(b));
  chunksChanged(p, seg, first, first + chunkCount(b), true);
  absorb(p, seg, b, bPrev(b));
  absorb(p, seg, b, bNext(b));
  p.pFree = setInsert(BY_SIZE, p.pFree, b);
}

/** Absorbs neighbour src into dst when src is free (dst is in no set). */
function absorb(p: VmsPolicy, seg: VmsSegment, dst: i32, src: i32): void {
  if (src == NO_BLOCK || !pIsFree(src)) return;
  p.pFree = setErase(BY_SIZE, p.pFree, src);
  const first = seg.chunkOf(bAddr(src));
  seg.setOwner(first, first + chunkCount(src), dst);
  absorbNeighbour(dst, src);
  if (bPrev(dst) == NO_BLOCK) seg.head = dst;
}
