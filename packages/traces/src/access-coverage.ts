/**
 * Coverage of a trace's use events: the share of allocated byte-seconds whose accesses are known,
 * and what is not seen.
 *
 * Every block live at some point of the trace counts its requested bytes times its lifetime (from
 * its alloc, or the first event for a block live at the start, to its free_requested, or the last
 * event), in seconds of the trace's own clock. A block is
 *   - touched: an operator named it (argument or result): its accesses are the dispatcher's;
 *   - scratch: allocated and freed during one operator's call (access-join.ts): accesses lie in it;
 *   - not seen: nothing recorded says when it is read or written. The report groups these by
 *     the operator during whose call the block was allocated ("between operators" otherwise):
 *     the cuBLAS workspace appears under the first matrix product, buffers of a compiled graph
 *     under no operator, blocks of a trace that starts mid-run as "live before the trace".
 * Touched blocks may also be accessed where the dispatcher does not look (a Triton kernel reading
 * a parameter): the record cannot say, so "known" means "known to the dispatcher".
 */
import { Action, UseKind, type AccessJoinSummary, type DeviceTrace } from "./model.js";
import { callHolding } from "./access-join.js";

export interface AccessCoverage {
  /** allocated byte-seconds in the trace, and the shares by class (they sum to 1) */
  byteSeconds: number;
  touchedShare: number;
  scratchShare: number;
  unseenShare: number;
  /** touched + scratch: the share whose accesses are known */
  knownShare: number;
  blocks: { touched: number; scratch: number; unseen: number };
  operators: number;
  uses: number;
  join: AccessJoinSummary;
  /** blocks not seen, grouped by the operator that was running when each was allocated, largest first */
  unseen: { allocatedDuring: string; blocks: number; bytes: number; byteSeconds: number; share: number }[];
}

const BETWEEN = "between operators";

/** Coverage of `d`'s use events; null when it has none (a plain snapshot). */
export function accessCoverage(d: DeviceTrace): AccessCoverage | null {
  const a = d.access;
  if (a === undefined) return null;
  const e = d.events;
  const n = e.length;
  const clock = (i: number) => (Number.isNaN(e.timeUs[i]) ? i : e.timeUs[i] / 1e6);
  const start = n > 0 ? clock(0) : 0;
  const end = n > 0 ? clock(n - 1) : 0;
  const touched = new Set<number>();
  const scratch = new Set<number>();
  for (let u = 0; u < a.uses.length; u++) (a.uses.kind[u] === UseKind.Scratch ? scratch : touched).add(a.uses.blockId[u]);
  const calls = Array.from({ length: a.operators.length }, (_, k) => ({ startUs: a.operators.startUs[k], endUs: a.operators.endUs[k] }));
  const during = (i: number): string => {
    if (Number.isNaN(e.timeUs[i])) return BETWEEN;
    const k = callHolding(calls, e.timeUs[i]);
    return k < 0 ? BETWEEN : a.operatorNames[a.operators.name[k]];
  };

  // lifetimes: [from, to] in seconds, bytes, and the alloc event (-1 for blocks live at the start)
  const life = new Map<number, { from: number; to: number; bytes: number; alloc: number }>();
  for (const seg of d.initialState) for (const b of seg.blocks) if (b.state === "allocated") life.set(b.blockId, { from: start, to: end, bytes: b.requestedSize, alloc: -1 });
  for (let i = 0; i < n; i++) {
    if (e.action[i] === Action.Alloc) life.set(e.blockId[i], { from: clock(i), to: end, bytes: e.size[i], alloc: i });
    else if (e.action[i] === Action.FreeRequested) {
      const l = life.get(e.blockId[i]);
      if (l !== undefined) l.to = clock(i);
    }
  }
  let total = 0;
  let touchedBs = 0;
  let scratchBs = 0;
  const unseen = new Map<string, { blocks: number; bytes: number; byteSeconds: number }>();
  const count = { touched: 0, scratch: 0, unseen: 0 };
  for (const [block, l] of life) {
    const bs = l.bytes * Math.max(0, l.to - l.from);
    total += bs;
    if (scratch.has(block) && !touched.has(block)) {
      scratchBs += bs;
      count.scratch++;
    } else if (touched.has(block)) {
      touchedBs += bs;
      count.touched++;
    } else {
      count.unseen++;
      const key = l.alloc < 0 ? "live before the trace" : during(l.alloc);
      const g = unseen.get(key) ?? { blocks: 0, bytes: 0, byteSeconds: 0 };
      g.blocks++;
      g.bytes += l.bytes;
      g.byteSeconds += bs;
      unseen.set(key, g);
    }
  }
  const share = (x: number) => (total > 0 ? x / total : 0);
  return {
    byteSeconds: total,
    touchedShare: share(touchedBs),
    scratchShare: share(scratchBs),
    unseenShare: share(total - touchedBs - scratchBs),
    knownShare: share(touchedBs + scratchBs),
    blocks: count,
    operators: a.operators.length,
    uses: a.uses.length,
    join: a.join,
    unseen: [...unseen]
      .map(([allocatedDuring, g]) => ({ allocatedDuring, ...g, share: share(g.byteSeconds) }))
      .sort((x, y) => y.byteSeconds - x.byteSeconds),
  };
}
