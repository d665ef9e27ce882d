/**
 * Block identities (INV-TRACE-3), in one forward pass over a device's events from the start state:
 * blocks live at the start get ids 0 .. initialLiveBlocks-1 in address order; each alloc takes the
 * next id; free_requested and free_completed carry the id of the live block at their address (it
 * stays live until free_completed). Other actions get -1.
 */
import { Action, type EventColumns, type SegmentState } from "./model.js";
import { TraceError } from "./trace-error.js";
import { hex } from "./initial-state.js";
import { AddressTable } from "./address-table.js";
import { numberEventsWasm, type NumberedEvents } from "./wasm-block-ids.js";

export interface BlockIdResult {
  blockId: Int32Array;
  initialLiveBlocks: number;
}

export type EventsWithoutIds = Omit<EventColumns, "blockId">;

/**
 * Numbers the events' blocks, with `live` holding the blocks live at the start and `firstId` the next
 * id. Returns the index of the first event that does not fit (an alloc at a live address, a free of
 * an address not live), or -1 when all do; `live` then holds the blocks live at the end.
 */
export function numberEvents(events: EventsWithoutIds, blockId: Int32Array, live: AddressTable, firstId: number): number {
  let nextId = firstId;
  const n = events.length;
  const action = events.action;
  const addr = events.addr;
  for (let i = 0; i < n; i++) {
    const a = action[i] as Action;
    if (a === Action.Alloc) {
      if (live.get(addr[i]) >= 0) return i;
      blockId[i] = nextId;
      live.set(addr[i], nextId++);
    } else if (a === Action.FreeRequested) {
      const id = live.get(addr[i]);
      if (id < 0) return i;
      blockId[i] = id;
    } else if (a === Action.FreeCompleted) {
      const id = live.delete(addr[i]);
      if (id < 0) return i;
      blockId[i] = id;
    } else {
      blockId[i] = -1;
    }
  }
  return -1;
}

/**
 * numberEvents over all of `events` from the blocks of `initialLive` (address, id 0..k-1), in
 * WebAssembly where it can run (wasm-block-ids.ts), else in JavaScript: the same result either way.
 */
export function numberAllEvents(events: EventsWithoutIds, initialLive: ReadonlyArray<readonly [number, number]>): NumberedEvents {
  const fast = numberEventsWasm(events, initialLive);
  if (fast !== null) return fast;
  const live = new AddressTable();
  for (const [addr, id] of initialLive) live.set(addr, id);
  const blockId = new Int32Array(events.length);
  const bad = numberEvents(events, blockId, live, initialLive.length);
  return { blockId, bad, live };
}

/**
 * Fills blockId for `events`, numbers the live blocks of `initialState` and labels the live blocks
 * of `finalState` (both modified in place). A mismatch is a TraceError: the initial state was rebuilt
 * from these very events, so it means the trace contradicts itself.
 */
export function assignBlockIds(
  events: EventsWithoutIds,
  initialState: SegmentState[],
  finalState: SegmentState[],
  where: { file: string; device: number },
): BlockIdResult {
  const initialLive: [number, number][] = [];
  for (const seg of initialState) {
    for (const b of seg.blocks) {
      if (b.state === "inactive") continue;
      b.blockId = initialLive.length;
      initialLive.push([b.address, b.blockId]);
    }
  }
  const initialLiveBlocks = initialLive.length;
  const { blockId, bad, live } = numberAllEvents(events, initialLive);
  if (bad >= 0) {
    const addr = hex(events.addr[bad]);
    const detail = events.action[bad] === Action.Alloc ? `alloc of ${addr} while the block there is still live` : `free of address ${addr} that was never allocated`;
    throw new TraceError(where.file, detail, { device: where.device, eventIndex: bad });
  }
  if (!labelFinalBlocks(finalState, live)) {
    throw new TraceError(where.file, "the final state's live blocks differ from those the trace leaves live", { device: where.device });
  }
  return { blockId, initialLiveBlocks };
}

/** Sets blockId on the live blocks of `finalState` from `live`; false unless they are exactly `live`. */
export function labelFinalBlocks(finalState: SegmentState[], live: AddressTable): boolean {
  let count = 0;
  for (const seg of finalState) {
    for (const b of seg.blocks) {
      if (b.state === "inactive") continue;
      const id = live.get(b.address);
      if (id < 0) return false;
      b.blockId = id;
      count++;
    }
  }
  return count === live.size;
}
