// tiering's layout in the shape of PyTorch's snapshot: as for expandable segments and lakebed, each
// contiguous run of resident pages of an arena is one segment, its blocks cut at the run's edges.
// Pages on the host are in no segment (their bytes are not on the device), so a block partly on
// the host shows only its resident pieces.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_PENDING, bAddr, bEnd, bRequested, bNext, bTraceId, hasFlag,
} from "../../memory/block-table";
import { Layout, BLOCK_ALLOCATED, BLOCK_PENDING_FREE, BLOCK_INACTIVE } from "../../replay/layout";
import { TieringPolicy } from "./tiering";
import { TierArena } from "./tier-arena";

/** Walks the resident runs of one arena, writing them when `out` is given; returns segments << 32 | pieces. */
function walkRuns(a: TierArena, out: Layout | null): i64 {
  let segments: i64 = 0;
  let pieces: i64 = 0;
  let b = a.head;
  let p = 0;
  while (p < a.highPage) {
    if (!a.resident(p)) {
      p++;
      continue;
    }
    let q = p;
    while (q < a.highPage && a.resident(q)) q++;
    const start = a.pageAddress(p);
    const end = a.pageAddress(q);
    segments++;
    if (out) out.beginSegment(start, a.stream, false, true);
    while (b != NO_BLOCK && bEnd(b) <= start) b = bNext(b);
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

function compareBase(x: TierArena, y: TierArena): i32 {
  return x.base < y.base ? -1 : x.base > y.base ? 1 : 0;
}

export function writeTieringLayout(t: TieringPolicy, out: Layout): void {
  const arenas = t.arenas.slice();
  arenas.sort(compareBase);
  let segments: i32 = 0;
  let pieces: i32 = 0;
  for (let i = 0; i < arenas.length; i++) {
    const counted = walkRuns(arenas[i], null);
    segments += <i32>(counted >> 32);
    pieces += <i32>(counted & 0xffffffff);
  }
  out.reset(segments, pieces);
  for (let i = 0; i < arenas.length; i++) walkRuns(arenas[i], out);
}
