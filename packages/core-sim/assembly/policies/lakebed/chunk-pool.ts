// One of lakebed's pools of physical chunks, all of one size: the pages of every arena it backs
// are that size, so any of its chunks fits any of their pages. The small pool's arenas take 2 MiB
// pages; the large pool's take lakebed_large_page_mb (20 MiB by default, the page PyTorch's
// expandable segments take for large blocks: one cuMemCreate, cuMemMap, cuMemSetAccess and
// cuMemUnmap per 20 MiB instead of ten). When both sizes are equal, small and large arenas share
// one pool and a chunk moves between them.
//
// The pool owns its idle list: the pages of its arenas that hold a chunk and no live block, oldest
// first, linked through the arenas' idlePrev/idleNext by page key (arena.ts).

import { NO_PAGE } from "./arena";

export class ChunkPool {
  id: i32;
  /** bytes of every chunk of this pool (= the page size of its arenas) */
  chunkBytes: u64;
  /** chunks created and not released */
  chunks: i32 = 0;
  /** idle pages, oldest first (keys: arena << 32 | page) */
  idleHead: i64 = NO_PAGE;
  idleTail: i64 = NO_PAGE;
  idleCount: i32 = 0;
  /** pages of this pool's arenas some live block touches, and the most there have been */
  touchedPages: i32 = 0;
  touchedPeak: i32 = 0;

  constructor(id: i32, chunkBytes: u64) {
    this.id = id;
    this.chunkBytes = chunkBytes;
  }
}
