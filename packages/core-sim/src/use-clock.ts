// Use events and the computation clock, handed to the Wasm for a policy that reads them (tiering):
// the trace's uses as three columns, and for every position a time in µs of the computation as
// it would run without the recorder. assembly/replay/uses.ts says what the Wasm does with them.
//
// Why a correction: the recorder (python/lakebed_record.py) costs host time per operator, a
// Python call that reads each tensor's storage, 20-45 µs measured (test/fixtures/access/README.md:
// a recorded step took 2.3-2.8 x a plain one on these host-bound models). The recorded clock
// therefore stretches every operator by that cost, and a transfer would look hidden behind time
// the job does not spend when it runs without the recorder. So the clock at position p is the
// recorded time since the first event minus `operatorOverheadUs` for every operator that started
// before p; the recording's own figures give it (recorderOperatorOverheadUs below). Gaps with no
// operator in them (the data loader, the optimizer's host work, the time between steps) are kept
// as recorded. docs/policies.md (tiering: the stall estimate) has the figures and the GPU check
// (scripts/record-access/check-clock.py) that compares this clock with step times measured without
// the recorder.
import { Action, type AccessColumns, type DeviceTrace } from "@lakebed/traces";
import type { CoreSimExports } from "./wasm-exports.js";

/** What a recording's .stats.json says about the recorder's cost (its `overhead` and `operators`). */
export interface RecorderOverhead {
  /** median seconds per step with the allocator history on, and with history and the recorder on */
  historyStepSeconds: number;
  recorderStepSeconds: number;
  /** operators recorded, over how many steps */
  operators: number;
  steps: number;
}

/**
 * Host µs the recorder added per operator: the step's extra time over its operators. Zero when the
 * recorder cost nothing measurable (a GPU-bound step hides it: mlp_compiled).
 */
export function recorderOperatorOverheadUs(o: RecorderOverhead): number {
  const perStep = o.operators / Math.max(1, o.steps);
  const extraUs = (o.recorderStepSeconds - o.historyStepSeconds) * 1e6;
  return perStep > 0 && extraUs > 0 ? extraUs / perStep : 0;
}

/**
 * The computation clock at every position 0 .. events (µs since the first event), the recorder's
 * cost taken out; NaN everywhere when the trace recorded no time. Non-decreasing: a correction
 * that would run the clock backwards (an operator shorter than the average cost) holds it still.
 */
export function computationClock(trace: DeviceTrace, access: AccessColumns, operatorOverheadUs: number): Float64Array {
  const e = trace.events;
  const n = e.action.length;
  const clock = new Float64Array(n + 1).fill(Number.NaN);
  if (n === 0 || Number.isNaN(e.timeUs[0])) return clock;
  const ops = access.operators;
  const t0 = e.timeUs[0];
  let recorded = 0;
  let op = 0;
  let last = 0;
  for (let p = 0; p <= n; p++) {
    if (p < n && !Number.isNaN(e.timeUs[p])) recorded = e.timeUs[p] - t0;
    while (op < ops.length && ops.position[op] <= p) op++;
    const t = Math.max(last, recorded - op * operatorOverheadUs);
    clock[p] = t;
    last = t;
  }
  return clock;
}

/**
 * The most bytes the trace ever holds live (its allocations rounded to 512 bytes), plus a quarter
 * for pages that blocks share: the pinned host arena tiering reserves unless tiering_host_mb says.
 */
export function hostArenaBytes(trace: DeviceTrace): number {
  const e = trace.events;
  const MiB2 = 2 * 1024 * 1024;
  let live = 0;
  let peak = 0;
  const sizes = new Map<number, number>();
  for (const s of trace.initialState) {
    for (const b of s.blocks) {
      if (b.state === "inactive") continue;
      sizes.set(b.blockId, b.size);
      live += b.size;
    }
  }
  peak = live;
  for (let i = 0; i < e.action.length; i++) {
    if (e.action[i] === Action.Alloc) {
      const bytes = Math.max(512, Math.ceil(e.size[i] / 512) * 512);
      sizes.set(e.blockId[i], bytes);
      live += bytes;
      if (live > peak) peak = live;
    } else if (e.action[i] === Action.FreeCompleted) {
      live -= sizes.get(e.blockId[i]) ?? 0;
      sizes.delete(e.blockId[i]);
    }
  }
  return Math.ceil((peak * 1.25) / MiB2) * MiB2 + 32 * MiB2;
}

/**
 * Copies the trace's uses, each block's free and the clock into an instance (after eventsAllocate
 * with `blockIds`, before start).
 * `offset`: events the replay runs before the trace's own (a materialized start state's
 * prologue), by which every position moves; the clock stands at its start during them. Returns
 * the clock at the end: the trace's computation time in µs (NaN without time).
 */
export function handUses(wasm: CoreSimExports, trace: DeviceTrace, access: AccessColumns, operatorOverheadUs: number, blockIds: number, offset = 0): number {
  const n = trace.events.action.length;
  const u = access.uses;
  wasm.usesAllocate(u.length, n + offset);
  const buf = wasm.memory.buffer;
  const position = new Uint32Array(buf, wasm.usesPosition(), u.length);
  position.set(u.position);
  if (offset > 0) for (let k = 0; k < u.length; k++) position[k] += offset;
  new Int32Array(buf, wasm.usesBlockId(), u.length).set(u.blockId);
  new Uint8Array(buf, wasm.usesKind(), u.length).set(u.kind);
  new Uint32Array(buf, wasm.usesOperator(), u.length).set(u.operator);
  // where each block is freed (Belady with frees): its free_requested, moved by the prologue
  const e = trace.events;
  const freeAt = new Int32Array(buf, wasm.usesFreeAt(), blockIds);
  for (let i = 0; i < e.action.length; i++) {
    const id = e.blockId[i];
    if (e.action[i] === Action.FreeRequested && id >= 0 && id < blockIds) freeAt[id] = i + offset;
  }
  const clock = computationClock(trace, access, operatorOverheadUs);
  const into = new Float64Array(buf, wasm.usesClock(), n + offset + 1);
  into.fill(clock[0], 0, offset);
  into.set(clock, offset);
  return clock[clock.length - 1];
}
