/**
 * Block identities (INV-TRACE-3), in one forward pass over a device's events from the rebuilt start
 * state: blocks live at the start get ids 0 .. initialLiveBlocks-1 in address order; each alloc takes
 * the next id; free_requested and free_completed carry the id of the live block at their address (it
 * stays live until free_completed). Other actions get -1.
 */
import { Action, type EventColumns, type SegmentState } from "./model.js";
import { TraceError } from "./trace-error.js";
import { hex } from "./initial-state.js";

export interface BlockIdResult {
  blockId: Int32Array;
  initialLiveBlocks: number;
}

/**
 * Fills blockId for `events`, numbers the live blocks of `initialState` and labels the live blocks
 * of `finalState` (both modified in place).
 */
export function assignBlockIds(
  events: Omit<EventColumns, "blockId">,
  initialState: SegmentState[],
  finalState: SegmentState[],
  where: { file: string; device: number },
): BlockIdResult {
  const live = new Map<number, number>();
  let nextId = 0;
  for (const seg of initialState) {
    for (const b of seg.blocks) {
      if (b.state === "inactive") continue;
      b.blockId = nextId++;
      live.set(b.address, b.blockId);
    }
  }
  const initialLiveBlocks = nextId;
  const n = events.length;
  const blockId = new Int32Array(n);
  const fail = (i: number, detail: string): never => {
    throw new TraceError(where.file, detail, { device: where.device, eventIndex: i });
  };
  for (let i = 0; i < n; i++) {
    const action = events.action[i] as Action;
    const addr = events.addr[i];
    if (action === Action.Alloc) {
      if (live.has(addr)) fail(i, `alloc of ${hex(addr)} while the block there is still live`);
      blockId[i] = nextId;
      live.set(addr, nextId++);
    } else if (action === Action.FreeRequested || action === Action.FreeCompleted) {
      const id = live.get(addr);
      if (id === undefined) fail(i, `free of address ${hex(addr)} that was never allocated`);
      blockId[i] = id!;
      if (action === Action.FreeCompleted) live.delete(addr);
    } else {
      blockId[i] = -1;
    }
  }
  for (const seg of finalState) {
    for (const b of seg.blocks) {
      if (b.state === "inactive") continue;
      const id = live.get(b.address);
      if (id === undefined) {
        throw new TraceError(where.file, `the final state holds a live block at ${hex(b.address)} that the trace does not account for`, { device: where.device });
      }
      b.blockId = id;
    }
  }
  return { blockId, initialLiveBlocks };
}
