// Which free chunk a newly touched page gets when it needs one. A chunk handed over costs a map and
// a set access (about 35 us for a 20 MiB page, device/cost-model.ts; an unmap besides, 25 us, when
// it leaves its arena), and a chunk taken from pages that are touched again soon has to be replaced
// there. Training repeats its allocation sequence every step, so a page let go stays idle about as
// long as it stayed idle last time: each page keeps when it was last let go and how long it stayed
// untouched before its next touch (smoothed, arena.ts), and the victim is the chunk whose next use,
// so forecast, is furthest away (what Belady's optimal replacement would take, with the past
// standing in for the future). Before aliases (chunk-pool.ts) the victim was an idle page, and the
// measurements below are of that.
// A page never touched again after being let go has no forecast and goes first: it held a tensor
// of the job's start (a checkpoint load, a warm-up) more often than one of the loop. The forecast
// repeats the gap, so that a page overdue by a whole gap is forecast again one gap on.
//
// Measured on the 39 single-stream traces (scripts/lakebed-cost.mjs, docs/policies.md has the
// variants tried): against taking the oldest idle page, which a repeating step defeats as LRU is
// defeated by a loop larger than its cache, chunk moves 7,882 -> 5,754 with the gap between touch
// starts (gpt2_ckpt 3,371 -> 2,076, llama_lora 606 -> 319; mlp_offload 364 -> 417), and 5,621 ->
// 5,351 with the idle gap instead, once blocks went to the cheaper end of their free range
// (gpt2_ckpt 2,109 -> 1,945, mlp_offload 405 -> 356): how long a page rests is what the victim
// choice is about, and a page's busy time varies with the step more than its rest does.
//
// With aliases (chunk-pool.ts) the choice is of a free chunk, which comes back into use as soon as
// any page mapping it is touched again: its forecast is the nearest of its pages'.
//
// The scan looks at the VICTIM_WINDOW oldest free chunks, so that a move costs O(1) whatever the
// number of free chunks; on the real traces no victim lies further down the list (the figures above
// are the same with the whole list).

import { Arena, NO_PAGE } from "./arena";
import { ChunkPool, NO_CHUNK } from "./chunk-pool";

/** free chunks, oldest freed first, the victim is chosen among */
export const VICTIM_WINDOW: i32 = 1024;
/** the forecast distance of a page never touched again after being let go: further than any forecast */
const NO_FORECAST: i64 = i64.MAX_VALUE;

/** Notes that the last block touching `page` let go of it at time `clock`. */
export function noteRelease(a: Arena, page: i32, clock: i64): void {
  unchecked((a.releasedAt[page] = clock));
}

/** Notes that a block began touching `page` (it had no touch) at time `clock`. */
export function noteTouchStart(a: Arena, page: i32, clock: i64): void {
  const released = unchecked(a.releasedAt[page]);
  if (released == 0) return;
  const gap = clock - released;
  const was = unchecked(a.idleGap[page]);
  unchecked((a.idleGap[page] = was == 0 ? gap : (was + gap) >> 1));
}

/** Mallocs from `clock` until the forecast next touch of untouched page `page`; NO_FORECAST without one. */
export function forecastDistance(a: Arena, page: i32, clock: i64): i64 {
  const gap = unchecked(a.idleGap[page]);
  if (gap == 0) return NO_FORECAST;
  return gap - ((clock - unchecked(a.releasedAt[page])) % gap);
}

/** Mallocs from `clock` until free chunk s is forecast to be needed again: the nearest forecast of its pages. */
export function chunkForecast(pool: ChunkPool, arenas: Array<Arena>, s: i32, clock: i64): i64 {
  let nearest = NO_FORECAST;
  const arena = pool.arenaOf(s);
  if (arena < 0) return nearest;
  const a = unchecked(arenas[arena]);
  for (let p = unchecked(pool.aliasHead[s]); p != NO_PAGE; p = unchecked(a.aliasNext[p])) {
    const d = forecastDistance(a, p, clock);
    if (d < nearest) nearest = d;
  }
  return nearest;
}

/**
 * The free chunk (its slot) of `pool` to hand to a new page: among the VICTIM_WINDOW oldest freed,
 * the one forecast to be needed last (the oldest on ties). NO_CHUNK when the pool has none free.
 */
export function victimChunk(pool: ChunkPool, arenas: Array<Arena>, clock: i64): i32 {
  let best = pool.freeHead;
  let furthest: i64 = -1;
  let s = pool.freeHead;
  for (let seen = 0; s != NO_CHUNK && seen < VICTIM_WINDOW; seen++) {
    const distance = chunkForecast(pool, arenas, s, clock);
    if (distance > furthest) {
      furthest = distance;
      best = s;
      if (distance == NO_FORECAST) break;
    }
    s = unchecked(pool.freeNext[s]);
  }
  return best;
}
