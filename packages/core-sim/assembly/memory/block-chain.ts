// One virtual range tiled by a chain of blocks, its free blocks kept in a best-fit free set: the
// part of an arena that lakebed's (policies/lakebed/arena.ts) and tiering's
// (policies/tiering/tier-arena.ts) share. Each arena adds its own page tables; what a block's
// pages do when it is freed (unmapped, kept idle, sent to the host) stays with the policy.
//
//  INV-CHAIN  head is the block at the range's base and the chain (bNext, address order) tiles the
//             whole range; freeRoot holds exactly the chain's blocks that are neither allocated nor
//             pending, and no two of them are neighbours (a freed block is merged with free ones).

import { NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, bPrev, bNext, hasFlag } from "./block-table";
import { absorbNeighbour } from "./block-links";
import { BY_SIZE, setInsert, setErase } from "./free-set";

export class BlockChain {
  /** free blocks of this range, a free-set ordered (stream, size, address): best fit */
  freeRoot: i32 = NO_BLOCK;
  /** the block at the range's base; the chain (bNext, address order) tiles the whole range */
  head: i32 = NO_BLOCK;

  /** Merges a block that holds nothing with its free neighbours and puts it in the free set. */
  cacheFree(block: i32): void {
    this.absorb(block, bPrev(block));
    this.absorb(block, bNext(block));
    this.freeRoot = setInsert(BY_SIZE, this.freeRoot, block);
  }

  /** Absorbs neighbour src into dst when src is free. */
  private absorb(dst: i32, src: i32): void {
    if (src == NO_BLOCK || hasFlag(src, FLAG_ALLOCATED) || hasFlag(src, FLAG_PENDING)) return;
    this.freeRoot = setErase(BY_SIZE, this.freeRoot, src);
    absorbNeighbour(dst, src);
    if (bPrev(dst) == NO_BLOCK) this.head = dst;
  }
}
