/**
 * A forward proof that a device's trace starts from an empty allocator, cheap enough to run on every
 * import before the backward rebuild (initial-state.ts), which it then spares for complete traces.
 *
 * Starting from nothing, it replays what the trace says about identities only: live block addresses
 * (alloc / free_completed), cudaMalloc'd segments (segment_alloc / segment_free) and mapped ranges of
 * expandable segments (segment_map / segment_unmap). The start was empty if
 *   - no event touches a block, segment or range the trace did not create (a free of an unknown
 *     address, a segment_free or segment_unmap of memory never obtained), and
 *   - at the end, the live blocks are exactly the final state's live blocks, the segments exactly
 *     its non-expandable segments, and the mapped ranges (adjacent ones joined) exactly its
 *     expandable segments.
 * Why that suffices: memory present at the start either stays to the end (then the final state holds
 * a segment the trace never created) or is released during it (then a free or unmap names memory the
 * trace never created); blocks live at the start live inside such memory.
 * When the proof fails the trace may still be complete: the backward rebuild decides, and it also
 * gives the precise error for a trace that contradicts itself.
 */
import { Action, type SegmentState } from "./model.js";
import { labelFinalBlocks, numberAllEvents, type EventsWithoutIds } from "./block-ids.js";

/** Block ids for a trace proven to start empty (final live blocks labelled), or null. */
export function blockIdsFromEmptyStart(events: EventsWithoutIds, finalState: SegmentState[]): Int32Array | null {
  const { blockId, bad, live } = numberAllEvents(events, []);
  if (bad >= 0) return null;
  if (!segmentsFromEmptyStart(events, finalState)) return null;
  if (!labelFinalBlocks(finalState, live)) return null;
  return blockId;
}

function segmentsFromEmptyStart(events: EventsWithoutIds, finalState: SegmentState[]): boolean {
  const segments = new Map<number, number>(); // cudaMalloc'd: address -> bytes
  let mapped: [number, number][] = []; // expandable: [start, end) ranges, sorted, disjoint
  for (let i = 0; i < events.length; i++) {
    const action = events.action[i] as Action;
    if (action < Action.SegmentAlloc || action > Action.SegmentUnmap) continue;
    const start = events.addr[i];
    const end = start + events.size[i];
    if (action === Action.SegmentAlloc) {
      if (segments.has(start)) return false;
      segments.set(start, end - start);
    } else if (action === Action.SegmentFree) {
      if (segments.get(start) !== end - start) return false;
      segments.delete(start);
    } else if (action === Action.SegmentMap) {
      if (mapped.some(([s, e]) => s < end && start < e)) return false;
      mapped.push([start, end]);
      mapped.sort((a, b) => a[0] - b[0]);
    } else {
      const holder = mapped.findIndex(([s, e]) => s <= start && end <= e);
      if (holder < 0) return false;
      const [s, e] = mapped[holder];
      const rest: [number, number][] = [];
      if (s < start) rest.push([s, start]);
      if (end < e) rest.push([end, e]);
      mapped = [...mapped.slice(0, holder), ...rest, ...mapped.slice(holder + 1)];
    }
  }
  const finalPlain = finalState.filter((s) => !s.expandable);
  if (finalPlain.length !== segments.size || finalPlain.some((s) => segments.get(s.address) !== s.totalSize)) return false;
  const joined: [number, number][] = [];
  for (const [s, e] of mapped) {
    const last = joined[joined.length - 1];
    if (last !== undefined && last[1] === s) last[1] = e;
    else joined.push([s, e]);
  }
  const finalExpandable = finalState.filter((s) => s.expandable).sort((a, b) => a.address - b.address);
  return finalExpandable.length === joined.length && finalExpandable.every((s, k) => s.address === joined[k][0] && s.address + s.totalSize === joined[k][1]);
}
