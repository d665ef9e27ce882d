// One of lakebed's pools of physical chunks, all of one size: the pages of every arena it backs
// are that size, so any of its chunks fits any of their pages. The small pool's arenas take 2 MiB
// pages; the large pool's take lakebed_large_page_mb (20 MiB by default, the page PyTorch's
// expandable segments take for large blocks: one cuMemCreate, cuMemMap, cuMemSetAccess and
// cuMemUnmap per 20 MiB instead of ten). When both sizes are equal, small and large arenas share
// one pool and a chunk moves between them.
//
// The pool's table of chunks, by slot (a slot is reused once its chunk is released):
//
//   slot  handle  arena  owner   aliases (pages of that arena mapping the chunk, linked)
//   0     7       1      12      12 <-> 40            chunk 7 backs page 12, which a block touches
//   1     9       1      -1      13 <-> 41 <-> 77     free: none of its pages is touched
//   2     0       -1     -1      (spare slot)
//
// A chunk may be mapped at several pages of one arena at once (aliases), as the CUDA driver
// allows; at most one of them, its owner, is touched. A page let go keeps its mapping, so that
// when it is touched again and its chunk is still free it is backed with no driver call: a
// training step that touches the pages of the step before, in any order that never needs one
// chunk at two touched pages at once, moves nothing. Only a page whose chunk is owned by another
// page is unmapped (and given a free chunk). Aliases stay within one arena, that is one stream:
// a free chunk is handed to another page of its stream without an unmap, as PyTorch reuses a freed
// block on its own stream in stream order; to another arena it goes only after every alias is
// unmapped, which waits for the work queued there.
//
// The free list links the chunks no touched page owns, the oldest freed first; reuse-forecast.ts
// picks from it the chunk a new page takes.

import { NO_PAGE } from "./arena";

/** no chunk (a slot index) */
export const NO_CHUNK: i32 = -1;
/** a chunk's owner when no page touches it */
export const NO_OWNER: i32 = -1;

export class ChunkPool {
  id: i32;
  /** bytes of every chunk of this pool (= the page size of its arenas) */
  chunkBytes: u64;
  /** chunks created and not released */
  chunks: i32 = 0;
  /** per slot: the device handle (0: a spare slot) */
  handle: Array<i32> = new Array<i32>();
  /** per slot: the arena whose pages map the chunk (-1: mapped nowhere, only while being handed over) */
  arena: Array<i32> = new Array<i32>();
  /** per slot: the touched page that holds the chunk, NO_OWNER when free */
  owner: Array<i32> = new Array<i32>();
  /** per slot: the first page of the alias list (NO_PAGE when mapped nowhere) */
  aliasHead: Array<i32> = new Array<i32>();
  /** per slot: pages mapping the chunk */
  aliasCount: Array<i32> = new Array<i32>();
  /** per slot: the free list's links (slots, NO_CHUNK at the ends) */
  freePrev: Array<i32> = new Array<i32>();
  freeNext: Array<i32> = new Array<i32>();
  /** free chunks, oldest freed first */
  freeHead: i32 = NO_CHUNK;
  freeTail: i32 = NO_CHUNK;
  freeCount: i32 = 0;
  /** slots of released chunks, to be reused */
  spare: Array<i32> = new Array<i32>();
  /** pages of this pool's arenas some live block touches, and the most there have been */
  touchedPages: i32 = 0;
  touchedPeak: i32 = 0;

  constructor(id: i32, chunkBytes: u64) {
    this.id = id;
    this.chunkBytes = chunkBytes;
  }

  /** A slot for a new chunk of device handle h: mapped nowhere, no owner, not free. */
  newSlot(h: i32): i32 {
    let s: i32;
    if (this.spare.length > 0) {
      s = this.spare.pop();
    } else {
      s = this.handle.length;
      this.handle.push(0);
      this.arena.push(-1);
      this.owner.push(NO_OWNER);
      this.aliasHead.push(NO_PAGE);
      this.aliasCount.push(0);
      this.freePrev.push(NO_CHUNK);
      this.freeNext.push(NO_CHUNK);
    }
    unchecked((this.handle[s] = h));
    unchecked((this.arena[s] = -1));
    unchecked((this.owner[s] = NO_OWNER));
    unchecked((this.aliasHead[s] = NO_PAGE));
    unchecked((this.aliasCount[s] = 0));
    this.chunks++;
    return s;
  }

  /** Gives slot s back (its chunk released: mapped nowhere, not free). */
  dropSlot(s: i32): void {
    unchecked((this.handle[s] = 0));
    unchecked((this.arena[s] = -1));
    this.spare.push(s);
    this.chunks--;
  }

  @inline handleOf(s: i32): i32 { return unchecked(this.handle[s]); }
  @inline ownerOf(s: i32): i32 { return unchecked(this.owner[s]); }
  @inline arenaOf(s: i32): i32 { return unchecked(this.arena[s]); }

  /** Appends free chunk s to the free list (the newest freed). */
  freeAppend(s: i32): void {
    unchecked((this.freePrev[s] = this.freeTail));
    unchecked((this.freeNext[s] = NO_CHUNK));
    if (this.freeTail != NO_CHUNK) unchecked((this.freeNext[this.freeTail] = s));
    else this.freeHead = s;
    this.freeTail = s;
    this.freeCount++;
  }

  /** Takes chunk s off the free list. */
  freeRemove(s: i32): void {
    const prev = unchecked(this.freePrev[s]);
    const next = unchecked(this.freeNext[s]);
    if (prev != NO_CHUNK) unchecked((this.freeNext[prev] = next));
    else this.freeHead = next;
    if (next != NO_CHUNK) unchecked((this.freePrev[next] = prev));
    else this.freeTail = prev;
    this.freeCount--;
  }
}
