import { Action, type DeviceTrace, type SegmentState, type Trace } from "@lakebed/traces";

/**
 * The trace model's invariants (packages/traces/src/model.ts, INV-TRACE-1..5), checked on whatever an
 * importer accepts: a fuzzed file may be rejected, but if it is accepted it must be a well-formed
 * trace that the simulator can trust. Returns the first broken invariant in words, or null.
 */
const MAX_EXACT = 2 ** 53;
const isByteCount = (v: number) => Number.isInteger(v) && v >= 0 && v < MAX_EXACT;

export function traceInvariantViolation(trace: Trace): string | null {
  for (const d of trace.devices) {
    const why = deviceViolation(d);
    if (why) return `device ${d.device}: ${why}`;
  }
  return null;
}

function deviceViolation(d: DeviceTrace): string | null {
  const e = d.events;
  const n = e.length;
  if (!Number.isInteger(n) || n < 0) return `INV-TRACE-1: length ${n}`;
  for (const [name, col] of Object.entries({ action: e.action, addr: e.addr, size: e.size, stream: e.stream, timeUs: e.timeUs, blockId: e.blockId })) {
    if (col.length !== n) return `INV-TRACE-1: column ${name} has ${col.length} entries, not ${n}`;
  }
  for (let i = 1; i < d.streams.length; i++) if (d.streams[i - 1] >= d.streams[i]) return `INV-TRACE-2: streams not strictly ascending at ${i}`;
  const live = new Set<number>();
  for (let i = 0; i < d.initialLiveBlocks; i++) live.add(i);
  let nextId = d.initialLiveBlocks;
  for (let i = 0; i < n; i++) {
    const a = e.action[i] as Action;
    if (a < Action.Alloc || a > Action.Other) return `event ${i}: action ${a} is not an Action`;
    if (e.stream[i] >= Math.max(1, d.streams.length)) return `INV-TRACE-2: event ${i} stream index ${e.stream[i]} of ${d.streams.length}`;
    if (!isByteCount(e.size[i])) return `INV-TRACE-4: event ${i} size ${e.size[i]}`;
    if (a !== Action.Oom && !isByteCount(e.addr[i])) return `INV-TRACE-4: event ${i} addr ${e.addr[i]}`;
    const id = e.blockId[i];
    if (a === Action.Alloc) {
      if (id !== nextId) return `INV-TRACE-3: event ${i} alloc has blockId ${id}, expected ${nextId}`;
      live.add(nextId++);
    } else if (a === Action.FreeRequested || a === Action.FreeCompleted) {
      if (id < -1 || id >= nextId) return `INV-TRACE-3: event ${i} free has blockId ${id} (${nextId} allocations so far)`;
    } else if (id !== -1) return `INV-TRACE-3: event ${i} (action ${a}) has blockId ${id}`;
  }
  for (const [which, state] of [["initialState", d.initialState], ["finalState", d.finalState]] as const) {
    const why = segmentsViolation(state, d.streams.length);
    if (why) return `${which}: ${why}`;
  }
  const initialIds = d.initialState.flatMap((s) => s.blocks.filter((b) => b.state !== "inactive").map((b) => b.blockId));
  if (new Set(initialIds).size !== initialIds.length || initialIds.some((id) => id < 0 || id >= d.initialLiveBlocks)) {
    return `INV-TRACE-3: initial live blocks carry ids ${initialIds.slice(0, 5).join(",")}... for ${d.initialLiveBlocks} live blocks`;
  }
  return null;
}

function segmentsViolation(segments: readonly SegmentState[], streams: number): string | null {
  for (const s of segments) {
    if (!isByteCount(s.address) || !isByteCount(s.totalSize)) return `segment at ${s.address} of ${s.totalSize} B`;
    if (s.stream >= Math.max(1, streams)) return `segment at ${s.address}: stream index ${s.stream} of ${streams}`;
    let at = s.address;
    for (const b of s.blocks) {
      if (b.address !== at) return `INV-TRACE-5: segment at ${s.address}: block at ${b.address}, expected ${at}`;
      if (!isByteCount(b.size) || b.size === 0) return `INV-TRACE-5: segment at ${s.address}: block of ${b.size} B`;
      at += b.size;
    }
    if (at !== s.address + s.totalSize) return `INV-TRACE-5: segment at ${s.address}: blocks cover ${at - s.address} of ${s.totalSize} B`;
  }
  return null;
}
