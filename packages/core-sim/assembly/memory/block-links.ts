// Block splits and merges, written once for every policy: the chain of neighbouring records in the
// block table (a caching segment's blocks, a lakebed arena's, a vms segment's pBlocks), linked by
// prev/next and tiling their range exactly. A split cuts one record in two, a merge makes two
// neighbours one; both keep the chain tiling the same bytes. What a split or a merge means for a
// policy (its free sets, statistics, owners, the head of its chain) stays with the policy.
//
//   split:  [ b                    ]  ->  [ front ][ b         ]   splitFront (the new record first)
//                                   ->  [ b      ][ back      ]   splitBack (the new record last)
//   merge:  [ src ][ dst ]  ->  [ dst          ]                   absorbNeighbour (src gone)

import {
  NO_BLOCK, bAddr, bSize, bEnd, bPrev, bNext, setAddr, setSize, setPrev, setNext, deleteBlock, isLive,
} from "./block-table";

/**
 * Splits block b after its first `bytes`: `front`, a new record for [start, start + bytes), is
 * linked before b, which keeps the rest (and its record, as PyTorch's remainder does).
 */
export function splitFront(b: i32, front: i32, bytes: u64): void {
  const before = bPrev(b);
  setPrev(front, before);
  if (before != NO_BLOCK) setNext(before, front);
  setNext(front, b);
  setPrev(b, front);
  setAddr(b, bAddr(b) + bytes);
  setSize(b, bSize(b) - bytes);
}

/** Splits block b at address `at`: b keeps [start, at), `back`, a new record for [at, end), is linked after it. */
export function splitBack(b: i32, back: i32, at: u64): void {
  const after = bNext(b);
  setNext(back, after);
  if (after != NO_BLOCK) setPrev(after, back);
  setPrev(back, b);
  setNext(b, back);
  setSize(b, at - bAddr(b));
}

/**
 * Merges src, dst's neighbour on either side, into dst: dst covers both ranges (from src's start
 * when src came first), src leaves the chain and the block table. Returns the bytes dst gained.
 * The caller has taken src out of its own structures; when dst is now first in the chain
 * (bPrev(dst) == NO_BLOCK), a policy that keeps its chain's head updates it.
 */
export function absorbNeighbour(dst: i32, src: i32): u64 {
  if (bPrev(dst) == src) {
    setAddr(dst, bAddr(src));
    const before = bPrev(src);
    setPrev(dst, before);
    if (before != NO_BLOCK) setNext(before, dst);
  } else {
    const after = bNext(src);
    setNext(dst, after);
    if (after != NO_BLOCK) setPrev(after, dst);
  }
  const gained = bSize(src);
  setSize(dst, bSize(dst) + gained);
  deleteBlock(src);
  return gained;
}

/**
 * Block b sits in its chain over [base, end) as the chain must: each neighbour is a live record that
 * links back to b and abuts it; with no block before it, b is the chain's head and starts at base;
 * with none after it, b ends at end. O(1): what the policies' local checks ask of a changed block.
 */
export function linkedInChain(b: i32, head: i32, base: u64, end: u64): bool {
  const prev = bPrev(b);
  if (prev == NO_BLOCK) {
    if (head != b || bAddr(b) != base) return false;
  } else if (!isLive(prev) || bNext(prev) != b || bEnd(prev) != bAddr(b)) {
    return false;
  }
  const next = bNext(b);
  if (next == NO_BLOCK) return bEnd(b) == end;
  return isLive(next) && bPrev(next) == b && bEnd(b) == bAddr(next);
}
