/**
 * Checks the invariants model.ts states (INV-TRACE-1 .. INV-TRACE-5) on a device trace. The readers
 * produce traces that hold them by construction; this is for tests, for traces built by hand or by
 * generators, and for consumers that want to fail early. It returns the first violation, or null.
 */
import { Action, type DeviceTrace, type SegmentState } from "./model.js";

export function checkDeviceTrace(d: DeviceTrace): string | null {
  const e = d.events;
  const n = e.length;
  for (const [name, column] of Object.entries({ action: e.action, addr: e.addr, size: e.size, stream: e.stream, timeUs: e.timeUs, blockId: e.blockId })) {
    if (column.length !== n) return `INV-TRACE-1: column ${name} has ${column.length} entries, expected ${n}`;
  }
  for (let i = 1; i < d.streams.length; i++) {
    if (!(d.streams[i - 1] < d.streams[i])) return `INV-TRACE-2: streams are not strictly ascending at index ${i}`;
  }
  let nextId = d.initialLiveBlocks;
  for (let i = 0; i < n; i++) {
    if (e.stream[i] >= d.streams.length) return `INV-TRACE-2: event ${i} names stream ${e.stream[i]} of ${d.streams.length}`;
    if (!isByteCount(e.addr[i]) || !isByteCount(e.size[i])) return `INV-TRACE-4: event ${i} has addr ${e.addr[i]}, size ${e.size[i]}`;
    const action = e.action[i] as Action;
    const id = e.blockId[i];
    if (action === Action.Alloc) {
      if (id !== nextId) return `INV-TRACE-3: alloc at event ${i} has block id ${id}, expected ${nextId}`;
      nextId++;
    } else if (action === Action.FreeRequested || action === Action.FreeCompleted) {
      if (id < 0 || id >= nextId) return `INV-TRACE-3: free at event ${i} has block id ${id}, not an allocation made so far`;
    } else if (id !== -1) {
      return `INV-TRACE-3: event ${i} is not an alloc or free but has block id ${id}`;
    }
  }
  let live = 0;
  for (const seg of d.initialState) live += seg.blocks.filter((b) => b.state !== "inactive").length;
  if (live !== d.initialLiveBlocks) return `INV-TRACE-3: initialState holds ${live} live blocks, initialLiveBlocks is ${d.initialLiveBlocks}`;
  const ids = new Set<number>();
  for (const seg of d.initialState) {
    for (const b of seg.blocks) {
      if (b.state === "inactive") continue;
      if (!Number.isInteger(b.blockId) || b.blockId < 0 || b.blockId >= live || ids.has(b.blockId)) {
        return `INV-TRACE-3: the live block at ${b.address} in initialState has block id ${b.blockId}; live blocks carry the ids 0 to ${live - 1}, each once`;
      }
      ids.add(b.blockId);
    }
  }
  if (d.complete !== (d.initialState.length === 0)) return "complete must be true exactly when initialState is empty";
  for (const seg of [...d.initialState, ...d.finalState]) {
    const problem = checkSegment(seg, d.streams.length);
    if (problem !== null) return problem;
  }
  return null;
}

function checkSegment(seg: SegmentState, streamCount: number): string | null {
  if (seg.stream >= streamCount) return `INV-TRACE-2: segment at ${seg.address} names stream ${seg.stream} of ${streamCount}`;
  let next = seg.address;
  for (const b of seg.blocks) {
    if (b.address !== next) return `INV-TRACE-5: in the segment at ${seg.address}, a block starts at ${b.address}, expected ${next}`;
    next += b.size;
  }
  if (next !== seg.address + seg.totalSize) return `INV-TRACE-5: the blocks of the segment at ${seg.address} cover ${next - seg.address} of ${seg.totalSize} bytes`;
  return null;
}

function isByteCount(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}
