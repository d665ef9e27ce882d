// The caching allocator's layout as PyTorch's snapshot reports it: each cudaMalloc'd segment,
// and each contiguous mapped range of an expandable segment, is one segment, its blocks in address
// order. The reverse direction (rebuilding the state from such a layout) is layout-adopter.ts.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_MAPPED, FLAG_PENDING, FLAG_SMALL, FLAG_STITCHED, FLAG_LENT, bAddr,
  bSize, bRequested, bPrev, bNext, bStream, bTraceId, hasFlag, isExpandable, blockIdBound, isLive,
} from "../../memory/block-table";
import { CachingAllocator } from "./caching";
import { Layout, BLOCK_ALLOCATED, BLOCK_PENDING_FREE, BLOCK_INACTIVE } from "../../replay/layout";

function compareAddress(x: i32, y: i32): i32 {
  const ax = bAddr(x);
  const ay = bAddr(y);
  return ax < ay ? -1 : ax > ay ? 1 : 0;
}

/**
 * A block that starts a snapshot segment: mapped, with no mapped block right before it. (A vms
 * stitched view is no segment: its memory is its lent pBlocks', which their segments show.)
 */
@inline function startsSegment(b: i32): bool {
  if (!hasFlag(b, FLAG_MAPPED) || hasFlag(b, FLAG_STITCHED)) return false;
  const p = bPrev(b);
  return p == NO_BLOCK || !hasFlag(p, FLAG_MAPPED);
}

export function writeCachingLayout(a: CachingAllocator, out: Layout): void {
  const heads = new Array<i32>();
  let blocks = 0;
  const bound = blockIdBound();
  for (let b = 0; b < bound; b++) {
    if (!isLive(b)) continue;
    if (hasFlag(b, FLAG_MAPPED) && !hasFlag(b, FLAG_STITCHED)) blocks++;
    if (startsSegment(b)) heads.push(b);
  }
  heads.sort(compareAddress);
  out.reset(heads.length, blocks);
  for (let i = 0; i < heads.length; i++) {
    const head = heads[i];
    out.beginSegment(bAddr(head), bStream(head), hasFlag(head, FLAG_SMALL), isExpandable(head));
    for (let b = head; b != NO_BLOCK && hasFlag(b, FLAG_MAPPED); b = bNext(b)) {
      // a vms pBlock lent to a stitched view holds live memory: allocated
      const state = hasFlag(b, FLAG_ALLOCATED | FLAG_LENT) ? BLOCK_ALLOCATED : hasFlag(b, FLAG_PENDING) ? BLOCK_PENDING_FREE : BLOCK_INACTIVE;
      out.addBlock(bAddr(b), bSize(b), bRequested(b), state, bTraceId(b));
    }
  }
}
