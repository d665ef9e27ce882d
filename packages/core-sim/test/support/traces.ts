// Test support: the shared real traces (the one list is test/support/shared-traces.ts), read once
// per test file, and small hand-built device traces.
import { Action, readTrace, type DeviceTrace, type SegmentState, type Trace } from "@lakebed/traces";
import type { DeviceReplayResult } from "@lakebed/core-sim";
import { recordedTraces, type RecordedTrace } from "../../../../test/support/shared-traces.js";

/** The recorded trace of that name (gpt2_ckpt.def, ...). */
export function recorded(name: string): RecordedTrace {
  const t = recordedTraces().find((r) => r.name === name);
  if (!t) throw new Error(`no recorded trace ${name} in ../shared/traces`);
  return t;
}

const cache = new Map<string, Promise<Trace>>();
export function loadTrace(file: string): Promise<Trace> {
  let t = cache.get(file);
  if (!t) cache.set(file, (t = readTrace(file)));
  return t;
}

export interface SegmentEventRow {
  action: number;
  addr: number;
  size: number;
}

/** The trace's own segment_alloc/free/map/unmap events, in order. */
export function traceSegmentEvents(d: DeviceTrace): SegmentEventRow[] {
  const out: SegmentEventRow[] = [];
  for (let i = 0; i < d.events.length; i++) {
    const action = d.events.action[i];
    if (action >= Action.SegmentAlloc && action <= Action.SegmentUnmap) out.push({ action, addr: d.events.addr[i], size: d.events.size[i] });
  }
  return out;
}

export function emulatedSegmentEvents(r: DeviceReplayResult): SegmentEventRow[] {
  return r.segmentEvents.map((e) => ({ action: e.action, addr: e.addr, size: e.size }));
}

/** A layout in a comparable shape: requested sizes only where PyTorch keeps them current. */
export function comparableLayout(segments: SegmentState[]) {
  return [...segments]
    .sort((a, b) => a.address - b.address)
    .map((s) => ({
      address: s.address,
      totalSize: s.totalSize,
      stream: s.stream,
      pool: s.pool,
      expandable: s.expandable,
      blocks: s.blocks.map((b) => ({ address: b.address, size: b.size, state: b.state, requested: b.state === "inactive" ? null : b.requestedSize })),
    }));
}

// ---- hand-built traces ---------------------------------------------------------------------------

export type Op =
  /** an allocation of `bytes` on `stream` (default 0), named for later frees */
  | { alloc: number; name: string; stream?: number }
  /** free_requested + free_completed */
  | { free: string }
  /** free_requested only (the block waits on another stream) */
  | { freeRequested: string }
  | { freeCompleted: string }
  /** a segment_free event as torch.cuda.empty_cache() writes (the replay decides what it was) */
  | { segmentFree: number; bytes: number }
  /** the allocator's out-of-memory entry for a rounded request */
  | { oom: number; stream?: number };

/** A complete single-device trace from a list of operations (addresses of allocs are not needed). */
export function buildTrace(ops: Op[], streams = 1): DeviceTrace {
  const rows: { action: number; addr: number; size: number; stream: number; blockId: number }[] = [];
  const ids = new Map<string, { id: number; size: number; stream: number }>();
  let next = 0;
  for (const op of ops) {
    if ("alloc" in op) {
      const entry = { id: next++, size: op.alloc, stream: op.stream ?? 0 };
      ids.set(op.name, entry);
      rows.push({ action: Action.Alloc, addr: 0, size: op.alloc, stream: entry.stream, blockId: entry.id });
    } else if ("free" in op || "freeRequested" in op || "freeCompleted" in op) {
      const name = "free" in op ? op.free : "freeRequested" in op ? op.freeRequested : op.freeCompleted;
      const entry = ids.get(name);
      if (!entry) throw new Error(`no allocation named ${name}`);
      if (!("freeCompleted" in op)) rows.push({ action: Action.FreeRequested, addr: 0, size: entry.size, stream: entry.stream, blockId: entry.id });
      if (!("freeRequested" in op)) rows.push({ action: Action.FreeCompleted, addr: 0, size: entry.size, stream: entry.stream, blockId: entry.id });
    } else if ("segmentFree" in op) {
      rows.push({ action: Action.SegmentFree, addr: op.segmentFree, size: op.bytes, stream: 0, blockId: -1 });
    } else {
      rows.push({ action: Action.Oom, addr: 0, size: op.oom, stream: op.stream ?? 0, blockId: -1 });
    }
  }
  const n = rows.length;
  return {
    device: 0,
    events: {
      length: n,
      action: Uint8Array.from(rows.map((r) => r.action)),
      addr: Float64Array.from(rows.map((r) => r.addr)),
      size: Float64Array.from(rows.map((r) => r.size)),
      stream: Uint32Array.from(rows.map((r) => r.stream)),
      timeUs: new Float64Array(n).fill(NaN),
      blockId: Int32Array.from(rows.map((r) => r.blockId)),
    },
    streams: Array.from({ length: streams }, (_, i) => BigInt(i)),
    initialState: [],
    finalState: [],
    complete: true,
    initialLiveBlocks: 0,
    privatePools: [],
  };
}

export const MiB = 1024 * 1024;
