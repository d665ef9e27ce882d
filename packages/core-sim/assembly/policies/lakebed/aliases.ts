// The alias lists of lakebed's chunks: the pages of one arena that map one chunk of its pool
// (chunk-pool.ts says why a chunk may be mapped at several pages). Each list is doubly linked
// through the arena's aliasPrev/aliasNext, headed by the pool's aliasHead[slot]; these routines
// keep the page's slot, the list, the pool's alias count and the chunk's arena in step, and
// nothing else (the driver calls and the owner are the policy's).

import { Arena, NO_PAGE } from "./arena";
import { ChunkPool } from "./chunk-pool";

/** Links page p of arena a, just mapped to chunk s of the pool, into s's alias list. */
export function linkAlias(pool: ChunkPool, a: Arena, p: i32, s: i32): void {
  const head = unchecked(pool.aliasHead[s]);
  unchecked((a.slots[p] = s + 1));
  unchecked((a.aliasPrev[p] = NO_PAGE));
  unchecked((a.aliasNext[p] = head));
  if (head != NO_PAGE) unchecked((a.aliasPrev[head] = p));
  unchecked((pool.aliasHead[s] = p));
  unchecked((pool.aliasCount[s] += 1));
  unchecked((pool.arena[s] = a.id));
  a.mappedPages++;
  if (p >= a.highPage) a.highPage = p + 1;
}

/** Unlinks page p of arena a, just unmapped, from its chunk's alias list; returns the chunk's slot. */
export function unlinkAlias(pool: ChunkPool, a: Arena, p: i32): i32 {
  const s = a.chunkAt(p);
  const prev = unchecked(a.aliasPrev[p]);
  const next = unchecked(a.aliasNext[p]);
  if (prev != NO_PAGE) unchecked((a.aliasNext[prev] = next));
  else unchecked((pool.aliasHead[s] = next));
  if (next != NO_PAGE) unchecked((a.aliasPrev[next] = prev));
  unchecked((a.slots[p] = 0));
  const left = unchecked(pool.aliasCount[s]) - 1;
  unchecked((pool.aliasCount[s] = left));
  if (left == 0) unchecked((pool.arena[s] = -1));
  a.mappedPages--;
  return s;
}
