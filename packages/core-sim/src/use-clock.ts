// Use events and the computation clock, handed to the Wasm for a policy that reads them (tiering):
// the trace's uses as three columns, and for every position a time in µs of the computation as
// it would run without the recorder. assembly/replay/uses.ts says what the Wasm does with them.
//
// Why a calibration: the recorded clock is not the job's. The recorder (python/lakebed_record.py)
// costs host time per operator (20-45 µs, test/fixtures/access/README.md), and the recorded steps
// are the job's first, cold ones (library initialization, first kernel launches, the allocator
// growing its segments): gpt2_train's four recorded steps span 3.9 s of operators, while the same
// step, warm and without the recorder, takes 24.4 ms (its NAME.stats.json). Taking the recorded
// clock as the computation would hide transfers behind time the job does not spend. So the clock
// is scaled: the recorded steps' operators, from the first one's start to the last one's end, are
// made to take `steps` x the step time measured without the recorder (ClockCalibration, which the
// CLI reads from NAME.stats.json beside the trace), each position keeping its share of the
// recorded time in between; before the first operator (the model being built) the clock stands at
// 0. Without a calibration the recorded clock is taken as it is, from the first operator. What
// this assumes (time shares inside a step follow the recorded ones) is what
// scripts/record-access/check-clock.py measures on the GPU; docs/policies.md (tiering: the stall
// estimate) has the figures.
import { Action, type AccessColumns, type DeviceTrace } from "@lakebed/traces";
import type { CoreSimExports } from "./wasm-exports.js";

/** The recorded steps and what one takes warm and without the recorder (NAME.stats.json). */
export interface ClockCalibration {
  /** median seconds of one step, plain (no allocator history, no recorder) */
  stepSeconds: number;
  /** steps the trace recorded */
  steps: number;
}

/**
 * The computation clock at every position 0 .. events (µs from the first operator's start), scaled
 * by `calibration` when given; NaN everywhere when the trace recorded no time. Non-decreasing.
 */
export function computationClock(trace: DeviceTrace, access: AccessColumns, calibration?: ClockCalibration): Float64Array {
  const e = trace.events;
  const n = e.action.length;
  const clock = new Float64Array(n + 1).fill(Number.NaN);
  const ops = access.operators;
  if (n === 0 || Number.isNaN(e.timeUs[0]) || ops.length === 0) return clock;
  const origin = ops.startUs[0];
  const scale = clockScale(access, calibration);
  let recorded = e.timeUs[0];
  let last = 0;
  for (let p = 0; p <= n; p++) {
    if (p < n && !Number.isNaN(e.timeUs[p])) recorded = e.timeUs[p];
    const t = Math.max(last, (recorded - origin) * scale);
    clock[p] = t;
    last = t;
  }
  return clock;
}

/** The factor from recorded µs to the computation clock's (1 without a calibration). */
export function clockScale(access: AccessColumns, calibration?: ClockCalibration): number {
  const ops = access.operators;
  if (!calibration || !(calibration.stepSeconds > 0) || !(calibration.steps > 0) || ops.length === 0) return 1;
  const spanUs = Math.max(1, ops.endUs[ops.length - 1] - ops.startUs[0]);
  return (calibration.stepSeconds * calibration.steps * 1e6) / spanUs;
}

/** Where a serverless shrink runs: at idle gaps, at events the user gives, or both. */
export interface ShrinkRequest {
  /** shrink before an operator that follows the previous one's end by at least this much computation time */
  idleMs?: number;
  /** shrink right before these events (trace event indexes) */
  atEvents?: number[];
  /** trace block ids whose content a shrink may drop instead of copying to the host */
  discardableBlockIds?: number[];
}

/** The positions a shrink runs at, ascending, each once: the idle gaps of the scaled clock and the user's points. */
export function shrinkPositions(trace: DeviceTrace, access: AccessColumns, request: ShrinkRequest, calibration?: ClockCalibration): number[] {
  const out = new Set<number>();
  const n = trace.events.action.length;
  for (const e of request.atEvents ?? []) if (Number.isInteger(e) && e >= 0 && e <= n) out.add(e);
  const idleUs = (request.idleMs ?? 0) * 1000;
  if (idleUs > 0) {
    const ops = access.operators;
    const scale = clockScale(access, calibration);
    for (let k = 1; k < ops.length; k++) {
      if ((ops.startUs[k] - ops.endUs[k - 1]) * scale >= idleUs) out.add(ops.position[k]);
    }
  }
  return [...out].sort((a, b) => a - b);
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
export function handUses(wasm: CoreSimExports, trace: DeviceTrace, access: AccessColumns, calibration: ClockCalibration | undefined, blockIds: number, offset = 0, shrink?: ShrinkRequest): number {
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
  if (shrink) {
    const discard = new Uint8Array(buf, wasm.usesDiscard(), blockIds);
    for (const id of shrink.discardableBlockIds ?? []) if (id >= 0 && id < blockIds) discard[id] = 1;
    const at = shrinkPositions(trace, access, shrink, calibration);
    new Int32Array(wasm.memory.buffer, wasm.usesShrinkAllocate(at.length), at.length).set(at.map((p) => p + offset));
  }
  const clock = computationClock(trace, access, calibration);
  const into = new Float64Array(wasm.memory.buffer, wasm.usesClock(), n + offset + 1);
  into.fill(clock[0], 0, offset);
  into.set(clock, offset);
  return clock[clock.length - 1];
}
