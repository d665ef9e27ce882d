// One tenant of a colocation run: its policy in its own core-sim instance (on the imported device,
// bound to the shared pool), and the operations it replays, in time order. A training tenant runs
// its prologue, then its trace's steps back to back; an inference tenant runs its prologue, then
// one segment per Poisson arrival (requests may overlap: their operations interleave by time).
import { applyConf, defaultAllocConf, instantiate, POLICY_CODES, type CoreSimExports, type DeviceImports } from "@lakebed/core-sim";
import type { TenantSpec } from "./scenario.js";
import type { SegmentOps, SegmentedTrace } from "./trace-segments.js";
import { poissonArrivals, seededRandom } from "./seeded-random.js";
import type { ParameterBlock } from "./parameter-chunks.js";

/** Maps a prologue block's read-only content as shared chunks (dedup); false: not done. */
export type MapSharedContent = (tenant: number, block: ParameterBlock) => boolean;

/** One replay of a segment (a step or a request): where it is, and the policy's handles of its blocks. */
export interface SegmentRun {
  /** index in the tenant's segments (-1: the prologue) */
  segment: number;
  ops: SegmentOps;
  startUs: number;
  next: number;
  handles: Int32Array;
  /** the request's number (inference), or the step's (training) */
  id: number;
  /** device time charged while it waited for memory (µs) */
  acquireUs: number;
  failed: boolean;
}

export interface RequestOutcome {
  arrivalS: number;
  acquireUs: number;
  failed: boolean;
}

export class TenantRun {
  readonly wasm: CoreSimExports;
  readonly kind: "training" | "inference";
  /** segments under way (training: at most one) */
  readonly running: SegmentRun[] = [];
  readonly requests: RequestOutcome[] = [];
  stepsCompleted = 0;
  stepsLost = 0;
  /** the inference tenant's last request end (µs), for the idle rule */
  lastActiveUs = 0;
  private arrivals: number[] = [];
  private nextArrival = 0;
  private nextStep = 0;
  /** training: when the next step may start (µs) */
  private stepReadyUs: number;

  constructor(
    readonly index: number,
    readonly spec: TenantSpec,
    readonly trace: SegmentedTrace,
    device: DeviceImports,
    capacityBytes: number,
    totalBytes: number,
    endS: number,
    /** with dedup: the prologue operations whose content is shared, and how to map it */
    private readonly shared: { blocks: Map<number, ParameterBlock>; map: MapSharedContent } | null = null,
  ) {
    if (trace.segments.length === 0) throw new Error(`${spec.trace}: no step or request found in the trace (colocate needs at least one)`);
    this.kind = spec.kind;
    this.wasm = instantiate(device);
    this.wasm.setup(POLICY_CODES[spec.policy], this.wasm.DEVICE_IMPORTED.value, capacityBytes, totalBytes);
    applyConf(this.wasm, defaultAllocConf());
    this.wasm.start(0, 0);
    const startUs = spec.startS * 1e6;
    this.running.push(this.begin(-1, trace.prologue, startUs, -1));
    this.stepReadyUs = startUs;
    this.lastActiveUs = startUs;
    if (this.kind === "inference") this.arrivals = poissonArrivals(spec.arrivalsPerS, spec.startS, endS, seededRandom(spec.seed));
  }

  /** The time of this tenant's next operation (µs), Infinity when it has none before endUs. */
  nextTimeUs(endUs: number): number {
    let t = Infinity;
    for (const r of this.running) t = Math.min(t, opTime(r));
    if (this.kind === "inference" && this.nextArrival < this.arrivals.length) t = Math.min(t, this.arrivals[this.nextArrival] * 1e6);
    if (this.kind === "training" && this.running.length === 0) t = Math.min(t, this.stepReadyUs);
    return t < endUs ? t : Infinity;
  }

  /**
   * Starts what is due at `nowUs` (a step, a request) or runs the earliest operation; returns the
   * segment run the operation belonged to (null when only a segment was started or ended).
   */
  runOne(nowUs: number, onOp: (run: SegmentRun) => void): void {
    if (this.kind === "inference" && this.nextArrival < this.arrivals.length && this.arrivals[this.nextArrival] * 1e6 <= nowUs && !this.dueOp(nowUs)) {
      const random = seededRandom(this.spec.seed * 7919 + this.nextArrival);
      const segment = Math.floor(random() * this.trace.segments.length);
      this.running.push(this.begin(segment, this.trace.segments[segment].ops, this.arrivals[this.nextArrival] * 1e6, this.nextArrival));
      this.nextArrival++;
      return;
    }
    if (this.kind === "training" && this.running.length === 0) {
      // after the first step, cycle over the others (the first carries the warm-up: cuBLAS, autotuning)
      const n = this.trace.segments.length;
      const segment = n === 1 ? 0 : this.nextStep === 0 ? 0 : 1 + ((this.nextStep - 1) % (n - 1));
      this.running.push(this.begin(segment, this.trace.segments[segment].ops, Math.max(nowUs, this.stepReadyUs), this.nextStep));
      return;
    }
    const run = this.dueOp(Infinity)!;
    onOp(run);
  }

  /** Applies the next operation of `run` to the policy; false when the policy is out of memory. */
  apply(run: SegmentRun): boolean {
    const k = run.next++;
    const ops = run.ops;
    let ok = true;
    if (ops.isAlloc[k]) {
      const content = run.segment < 0 ? this.shared?.blocks.get(k) : undefined;
      if (content !== undefined && this.shared!.map(this.index, content)) {
        // the whole chunks are shared, read-only; the tail is the tenant's own (through its policy)
        const h = content.privateBytes > 0 ? this.wasm.policyMalloc(content.privateBytes, ops.stream[k]) : -1;
        run.handles[ops.block[k]] = h;
        return content.privateBytes === 0 || h >= 0;
      }
      const h = this.wasm.policyMalloc(ops.bytes[k], ops.stream[k]);
      run.handles[ops.block[k]] = h;
      ok = h >= 0;
    } else {
      const h = run.handles[ops.block[k]];
      if (h >= 0) this.wasm.policyFree(h);
      run.handles[ops.block[k]] = -1;
    }
    return ok;
  }

  /** Whether run has finished its operations. */
  finished(run: SegmentRun): boolean {
    return run.next >= run.ops.length;
  }

  /** Ends a finished (or dropped) segment run. */
  end(run: SegmentRun, nowUs: number, completed: boolean): void {
    this.running.splice(this.running.indexOf(run), 1);
    if (run.segment < 0) return;
    if (this.kind === "inference") {
      this.requests.push({ arrivalS: run.startUs / 1e6, acquireUs: run.acquireUs, failed: run.failed });
      this.lastActiveUs = nowUs;
      return;
    }
    if (completed) {
      this.stepsCompleted++;
      this.nextStep++;
      this.stepReadyUs = nowUs;
    } else {
      // a lost step is run again once the memory may be back: after the step's own length
      this.stepsLost++;
      this.stepReadyUs = nowUs + this.trace.segments[run.segment].durationUs;
    }
  }

  /**
   * Drops a segment run: frees every block it still holds (the step's activations, Sirius' L1
   * discard of the current batch); the caller ends it.
   */
  drop(run: SegmentRun): void {
    for (let b = 0; b < run.handles.length; b++) {
      const h = run.handles[b];
      if (h >= 0) this.wasm.policyFree(h);
      run.handles[b] = -1;
    }
  }

  /**
   * The scenario's end: requests still under way count with what they waited so far (the time
   * they would still wait is not known).
   */
  closeOpen(): void {
    for (const run of this.running) {
      if (this.kind === "inference" && run.segment >= 0) this.requests.push({ arrivalS: run.startUs / 1e6, acquireUs: run.acquireUs, failed: run.failed });
    }
  }

  /** The current training step (null between steps, or during the prologue). */
  currentStep(): SegmentRun | null {
    return this.kind === "training" ? (this.running.find((r) => r.segment >= 0) ?? null) : null;
  }

  private dueOp(limitUs: number): SegmentRun | null {
    let best: SegmentRun | null = null;
    let t = limitUs;
    for (const r of this.running) {
      const at = opTime(r);
      if (at <= t) {
        t = at;
        best = r;
      }
    }
    return best;
  }

  private begin(segment: number, ops: SegmentOps, startUs: number, id: number): SegmentRun {
    return { segment, ops, startUs, next: 0, handles: new Int32Array(Math.max(1, ops.blocks)).fill(-1), id, acquireUs: 0, failed: false };
  }
}

/** When the run's next operation is due (its start, once it has none left: it is to be ended). */
function opTime(r: SegmentRun): number {
  return r.next < r.ops.length ? r.startUs + r.ops.atUs[r.next] : r.startUs + (r.ops.length > 0 ? r.ops.atUs[r.ops.length - 1] : 0);
}
