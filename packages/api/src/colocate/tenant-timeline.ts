// One tenant of a scenario on its own, as a plain trace: its prologue at its start, then its
// requests at their Poisson arrivals (inference) or its steps back to back (training) up to the
// scenario's end, every operation at the time the simulator's TenantRun gives it (tenant-run.ts:
// the same arrivals, the same segment drawn for each request, a step after the last one ended).
// A live tenant process replays this trace through its policy on its own driver (live-dedup.ts);
// the simulator replays it to know what the tenant needs alone.
//
// With dedup, a prologue block whose whole 2 MiB windows are shared (parameter-chunks.ts) keeps
// only its tail in the trace: the windows are mapped from the share registry instead, read-only,
// outside the policy (as TenantRun.apply does on the shared pool); a block with no tail is left out.
//
// The trace's invariants (traces' model.ts): every Alloc takes the next block id in trace order;
// a free is a FreeRequested then a FreeCompleted of the block at the same time (the replay checks
// a block's pattern at the first and frees it at the second); timeUs never decreases.
import { Action, type DeviceTrace } from "@lakebed/traces";
import type { TenantSpec } from "./scenario.js";
import type { SegmentOps, SegmentedTrace } from "./trace-segments.js";
import type { ParameterBlock } from "./parameter-chunks.js";
import { poissonArrivals, seededRandom } from "./seeded-random.js";

export interface TenantTimeline {
  trace: DeviceTrace;
  /** inference: requests replayed; training: steps */
  segmentsRun: number;
  /** prologue blocks left to the registry whole (no tail), and those cut to their tail */
  sharedBlocksOmitted: number;
  sharedBlocksCut: number;
}

interface Run {
  ops: SegmentOps;
  startUs: number;
  /** prologue only: op index -> bytes the policy allocates instead (0: none) */
  cut?: Map<number, number>;
}

/**
 * The tenant's operations up to `durationS`, as a complete trace; `shared` (dedup): the prologue
 * operations whose whole windows come from the registry.
 */
export function tenantTimeline(spec: TenantSpec, segmented: SegmentedTrace, streams: bigint[], durationS: number, shared: Map<number, ParameterBlock> | null = null): TenantTimeline {
  const startUs = spec.startS * 1e6;
  const endUs = durationS * 1e6;
  const cut = new Map<number, number>();
  for (const [k, block] of shared ?? []) cut.set(k, block.privateBytes);
  const runs: Run[] = [{ ops: segmented.prologue, startUs, cut }];
  const segments = segmented.segments;
  if (segments.length === 0) throw new Error(`${spec.trace}: no step or request found in the trace (colocate needs at least one)`);
  if (spec.kind === "inference") {
    // as TenantRun: the arrivals from the tenant's seed, each request's segment from seed * 7919 + k
    poissonArrivals(spec.arrivalsPerS, spec.startS, durationS, seededRandom(spec.seed)).forEach((at, k) => {
      const segment = Math.floor(seededRandom(spec.seed * 7919 + k)() * segments.length);
      runs.push({ ops: segments[segment].ops, startUs: at * 1e6 });
    });
  } else {
    // as TenantRun: the first step, then the others in turn, each when the last one ended
    let at = startUs;
    for (let step = 0; at < endUs; step++) {
      const n = segments.length;
      const segment = n === 1 || step === 0 ? 0 : 1 + ((step - 1) % (n - 1));
      const ops = segments[segment].ops;
      runs.push({ ops, startUs: at });
      at += ops.length > 0 ? ops.atUs[ops.length - 1] : 0;
      if (ops.length === 0 || ops.atUs[ops.length - 1] === 0) break; // a step of no duration would not end
    }
  }
  // every operation by time; at equal times the earlier run first, then the run's own order
  const order: [number, number][] = [];
  runs.forEach((r, i) => {
    for (let k = 0; k < r.ops.length; k++) order.push([i, k]);
  });
  const timeOf = ([i, k]: [number, number]) => runs[i].startUs + runs[i].ops.atUs[k];
  order.sort((a, b) => timeOf(a) - timeOf(b) || a[0] - b[0] || a[1] - b[1]);

  const action: number[] = [];
  const size: number[] = [];
  const stream: number[] = [];
  const timeUs: number[] = [];
  const blockId: number[] = [];
  const idOf = runs.map((r) => new Int32Array(Math.max(1, r.ops.blocks)).fill(-1));
  let nextId = 0;
  let omitted = 0;
  let cutCount = 0;
  for (const [i, k] of order) {
    const { ops, cut: cuts } = runs[i];
    const t = timeOf([i, k]);
    const local = ops.block[k];
    if (ops.isAlloc[k]) {
      let bytes = ops.bytes[k];
      const tail = cuts?.get(k);
      if (tail !== undefined) {
        if (tail === 0) {
          omitted++;
          continue;
        }
        cutCount++;
        bytes = tail;
      }
      idOf[i][local] = nextId;
      action.push(Action.Alloc), size.push(bytes), stream.push(ops.stream[k]), timeUs.push(t), blockId.push(nextId++);
    } else {
      const id = idOf[i][local];
      if (id < 0) continue; // a block left to the registry is never freed (prologue blocks are not)
      for (const a of [Action.FreeRequested, Action.FreeCompleted]) action.push(a), size.push(0), stream.push(ops.stream[k]), timeUs.push(t), blockId.push(id);
      idOf[i][local] = -1;
    }
  }
  const n = action.length;
  const trace: DeviceTrace = {
    device: 0,
    events: {
      length: n,
      action: Uint8Array.from(action),
      addr: new Float64Array(n),
      size: Float64Array.from(size),
      stream: Uint32Array.from(stream),
      timeUs: Float64Array.from(timeUs),
      blockId: Int32Array.from(blockId),
    },
    streams,
    initialState: [],
    finalState: [],
    complete: true,
    initialLiveBlocks: 0,
    privatePools: [],
  };
  return { trace, segmentsRun: runs.length - 1, sharedBlocksOmitted: omitted, sharedBlocksCut: cutCount };
}
