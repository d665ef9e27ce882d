// lakebed's layout in the shape of PyTorch's snapshot: as for expandable segments, each contiguous
// run of pages of an arena that hold a chunk is one segment. A chunk mapped at several pages
// (chunk-pool.ts) is shown once, at the page that holds it (LakebedPolicy.holdsChunk: its owner,
// or the head of its aliases when it is free), so that the segments add up to the reserved bytes.
// Blocks do not align to pages, so a block that reaches outside a run is cut at the run's edges
// (only free blocks and the free ends of idle pages can reach outside: every page a live block
// touches holds its chunk).

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, bAddr, bEnd, bRequested, bNext, bTraceId, hasFlag,
} from "../../memory/block-table";
import { Layout, BLOCK_ALLOCATED, BLOCK_PENDING_FREE, BLOCK_INACTIVE } from "../../replay/layout";
import { LakebedPolicy } from "./lakebed";
import { Arena } from "./arena";

function compareBase(x: Arena, y: Arena): i32 {
  return x.base < y.base ? -1 : x.base > y.base ? 1 : 0;
}

/** Walks the mapped runs of one arena, writing them when `out` is given; returns the pieces counted. */
function walkRuns(lb: LakebedPolicy, a: Arena, out: Layout | null): i64 {
  let segments: i64 = 0;
  let pieces: i64 = 0;
  let b = a.head;
  let p = 0;
  while (p < a.highPage) {
    if (!lb.holdsChunk(a, p)) {
      p++;
      continue;
    }
    let q = p;
    while (q < a.highPage && lb.holdsChunk(a, q)) q++;
    const start = a.pageAddress(p);
    const end = a.pageAddress(q);
    segments++;
    if (out) out.beginSegment(start, a.stream, a.small, true);
    while (b != NO_BLOCK && bEnd(b) <= start) b = bNext(b);
    // blocks overlapping [start, end), cut to it; the last may go on into the next run
    let c = b;
    while (c != NO_BLOCK && bAddr(c) < end) {
      const from = max(bAddr(c), start);
      const to = min(bEnd(c), end);
      pieces++;
      if (out) {
        const state = hasFlag(c, FLAG_ALLOCATED) ? BLOCK_ALLOCATED : hasFlag(c, FLAG_PENDING) ? BLOCK_PENDING_FREE : BLOCK_INACTIVE;
        out.addBlock(from, to - from, bRequested(c), state, bTraceId(c));
      }
      if (bEnd(c) > end) break;
      c = bNext(c);
    }
    b = c;
    p = q;
  }
  return (segments << 32) | pieces;
}

export function writeLakebedLayout(lb: LakebedPolicy, out: Layout): void {
  const arenas = lb.arenas.slice();
  arenas.sort(compareBase);
  let segments: i32 = 0;
  let pieces: i32 = 0;
  for (let i = 0; i < arenas.length; i++) {
    const counted = walkRuns(lb, arenas[i], null);
    segments += <i32>(counted >> 32);
    pieces += <i32>(counted & 0xffffffff);
  }
  out.reset(segments, pieces);
  for (let i = 0; i < arenas.length; i++) walkRuns(lb, arenas[i], out);
}
