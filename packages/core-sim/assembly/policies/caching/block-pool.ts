// PyTorch's BlockPool: the cached (free) blocks of one pool, small or large, in two ordered sets,
// plus the pool's garbage-collection clock.
//   blocks    mapped free blocks, ordered (stream, size, address): best fit is a lower bound.
//   unmapped  unmapped ranges of expandable segments, ordered (stream, address).
// Allocated and pending-free blocks are in neither.

import {
  BY_SIZE, BY_ADDRESS, setInsert, setErase, lowerBound, successor, predecessor, first, last,
} from "../../memory/free-set";
import { NO_BLOCK, setGcBase } from "../../memory/block-table";

export class BlockPool {
  small: bool;
  blocks: i32 = NO_BLOCK;
  unmapped: i32 = NO_BLOCK;
  /** get_free_blocks_call_count: advances on each best-fit search while GC is on */
  gcClock: i64 = 0;

  constructor(small: bool) {
    this.small = small;
  }

  /** insert_into_blocks: caches a block and restarts its age. */
  insertFree(b: i32): void {
    setGcBase(b, this.gcClock);
    this.blocks = setInsert(BY_SIZE, this.blocks, b);
  }

  eraseFree(b: i32): void {
    this.blocks = setErase(BY_SIZE, this.blocks, b);
  }

  insertUnmapped(b: i32): void {
    this.unmapped = setInsert(BY_ADDRESS, this.unmapped, b);
  }

  eraseUnmapped(b: i32): void {
    this.unmapped = setErase(BY_ADDRESS, this.unmapped, b);
  }

  /** The smallest free block of `stream` with size >= `size` (lowest address on ties), or NO_BLOCK. */
  @inline lowerBoundFree(stream: i32, size: u64): i32 {
    return lowerBound(BY_SIZE, this.blocks, stream, size, 0);
  }
  @inline nextFree(b: i32): i32 { return successor(BY_SIZE, this.blocks, b); }
  @inline prevFree(b: i32): i32 { return predecessor(BY_SIZE, this.blocks, b); }
  @inline firstFree(): i32 { return first(this.blocks); }
  @inline lastFree(): i32 { return last(this.blocks); }

  @inline lowerBoundUnmapped(stream: i32, addr: u64): i32 {
    return lowerBound(BY_ADDRESS, this.unmapped, stream, 0, addr);
  }
  @inline nextUnmapped(b: i32): i32 { return successor(BY_ADDRESS, this.unmapped, b); }
}
