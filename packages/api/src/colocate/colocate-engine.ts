// The colocation engine: every tenant's operations interleaved by time against one shared pool,
// under one strategy for sharing it:
//
//   handover  Sirius (reference A.2-A.5): one pool; an inference tenant short of memory takes the
//             reserve, then free chunks, then training's cached chunks (an adjustment drains
//             training's queue: ADJUST_US), then training's current batch (dropped, its blocks
//             freed: the step is lost); chunks changing owner are zero-filled; idle inference
//             tenants give their cache to the reserve, which is held between W and 2W.
//   sp-50,    a static partition: training may hold 50% (75%) of the pool, the inference tenants
//   sp-75     the rest; nobody takes from anybody.
//   pytorch   separate processes under PyTorch's allocator: one device, first come first served;
//             an inference tenant short of memory waits for training's step to end, training
//             empties its cache (cudaFree), and then inference mallocs: free, then malloc.
//
// The replay is open-loop: a request's operations run at the times the trace gives them, and the
// time it waited for memory is its memory-acquire latency (it does not push its later operations
// back). Device calls are charged from core-sim's cost model (driver-costs.ts).
import type { Scenario } from "./scenario.js";
import { CHUNK_BYTES, SharedPool, type ChunkBacking, type PoolFault } from "./shared-pool.js";
import { driverMicros, type DriverCall } from "./driver-costs.js";
import { tenantDevice, type TenantHost } from "./tenant-device.js";
import { TenantRun, type SegmentRun } from "./tenant-run.js";
import type { SegmentedTrace } from "./trace-segments.js";
import type { ParameterBlock, ParameterJoin } from "./parameter-chunks.js";

export const STRATEGIES = ["handover", "sp-50", "sp-75", "pytorch"] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/**
 * Draining training's kernel queue for an adjustment, charged to the request that asked: Sirius'
 * measured mean (under 5 ms, ATC'25 section 6.3), not simulated: the simulator has no kernels.
 */
export const ADJUST_US = 5000;
/** how often the engine samples the pool and applies the idle rule (Sirius' monitor: 100 ms) */
const TICK_US = 100_000;

export interface Handover {
  atS: number;
  tenant: string;
  /** cache: training's cached chunks (an adjustment); discard: training's batch dropped too; wait: free-then-malloc after the step */
  kind: "cache" | "discard" | "wait";
  /** what training gave up */
  bytes: number;
  latencyUs: number;
}

export interface TimelinePoint {
  tS: number;
  /** deduplicated read-only chunks (each counted once) */
  sharedBytes: number;
  trainingBytes: number;
  inferenceBytes: number;
  reservedBytes: number;
  freeBytes: number;
}

export interface StrategyRun {
  strategy: StrategyName;
  /** identical read-only chunks of the tenants shared (their fingerprints joined to their traces) */
  dedup: boolean;
  /** the most of the pool in use at once (sampled every 100 ms) */
  peakUsedBytes: number;
  sharedChunks: number;
  requests: number;
  failedRequests: number;
  acquireP50Us: number;
  acquireP99Us: number;
  acquireMaxUs: number;
  /** requests served with no failure and an acquire latency within the SLO */
  withinSloShare: number;
  trainingStepsCompleted: number;
  trainingStepsLost: number;
  /** bytes training gave to inference in handovers */
  trainingGaveUpBytes: number;
  trainingMeanBytes: number;
  inferenceMeanBytes: number;
  zeroFills: number;
  /** memory taken from training for inference (requests and model loads alike): latency of each */
  handoverP50Us: number;
  handoverP99Us: number;
  handovers: Handover[];
  timeline: TimelinePoint[];
  perTenant: { name: string; kind: string; requests: number; failed: number; acquireP99Us: number; stepsCompleted: number; stepsLost: number }[];
  /** operations replayed, all tenants */
  operations: number;
}

export interface EngineOptions {
  watermarkBytes: number;
  /** per tenant, its parameters joined to its trace (null: none); with them, dedup is on */
  parameters?: (ParameterJoin | null)[];
  fault?: PoolFault;
  /** what backs the pool's chunks (default: zero-fills charged from the cost model under
   * handover); a DriverChunkBacking makes them real memsets on a driver, timed (live/) */
  backing?: ChunkBacking;
  /** check the pool's invariants after every operation (tests) */
  checkEvery?: number;
  onProgress?(doneUs: number, totalUs: number): void;
}

export function runStrategy(scenario: Scenario, traces: SegmentedTrace[], strategy: StrategyName, options: EngineOptions): StrategyRun {
  return new ColocationEngine(scenario, traces, strategy, options).run();
}

class ColocationEngine implements TenantHost {
  readonly pool: SharedPool;
  private readonly tenants: TenantRun[];
  private readonly training: TenantRun | null;
  private readonly watermarkChunks: number;
  private readonly quota: number[];
  private nowUs = 0;
  /** the segment run waiting on the current device call (null: a tenant's own time) */
  private bill: SegmentRun | null = null;
  private readonly handovers: Handover[] = [];
  private readonly timeline: TimelinePoint[] = [];
  private gaveUpChunks = 0;
  private operations = 0;
  private inHandover = false;
  /** dedup: digest -> the pool's key; per tenant, how many of its blocks map each key */
  private readonly contentKeys = new Map<string, number>();
  private readonly mapped = new Map<number, Map<number, number>>();
  private peakUsedChunks = 0;

  constructor(
    private readonly scenario: Scenario,
    traces: SegmentedTrace[],
    private readonly strategy: StrategyName,
    private readonly options: EngineOptions,
  ) {
    this.pool = new SharedPool(scenario.capacityBytes, options.backing ?? { zeroFill: () => (strategy === "handover" ? driverMicros("memset", CHUNK_BYTES) : 0) }, options.fault ?? "none");
    this.watermarkChunks = Math.floor(options.watermarkBytes / CHUNK_BYTES);
    const share = strategy === "sp-50" ? 0.5 : strategy === "sp-75" ? 0.75 : 1;
    const trainingChunks = Math.floor(share * this.pool.chunks);
    const hasTraining = scenario.tenants.some((t) => t.kind === "training");
    this.quota = scenario.tenants.map((t) => (share === 1 || !hasTraining ? this.pool.chunks : t.kind === "training" ? trainingChunks : this.pool.chunks - trainingChunks));
    const endS = scenario.durationS;
    this.tenants = scenario.tenants.map((spec, i) => {
      // a static partition is PyTorch's per-process limit (set_per_process_memory_fraction)
      const limit = share === 1 ? 0 : this.quota[i] * CHUNK_BYTES;
      const join = options.parameters?.[i] ?? null;
      const shared = join === null ? null : { blocks: join.byPrologueOp, map: (t: number, b: ParameterBlock) => this.mapContent(t, b) };
      return new TenantRun(i, spec, traces[i], tenantDevice(i, this, scenario.capacityBytes), limit, scenario.capacityBytes, endS, shared);
    });
    this.training = this.tenants.find((t) => t.kind === "training") ?? null;
  }

  run(): StrategyRun {
    const endUs = this.scenario.durationS * 1e6;
    let tickUs = 0;
    const check = this.options.checkEvery ?? 0;
    for (;;) {
      let next: TenantRun | null = null;
      let t = Infinity;
      for (const tenant of this.tenants) {
        const at = tenant.nextTimeUs(endUs);
        if (at < t) {
          t = at;
          next = tenant;
        }
      }
      if (next === null) break;
      while (tickUs <= t) {
        this.tick(tickUs);
        tickUs += TICK_US;
      }
      this.nowUs = t;
      next.runOne(t, (run) => this.applyOp(next!, run));
      this.endFinished(next);
      this.operations++;
      if (check > 0 && this.operations % check === 0) this.checkPool();
      if ((this.operations & 0x3fff) === 0) this.options.onProgress?.(t, endUs);
    }
    for (; tickUs <= endUs; tickUs += TICK_US) this.tick(tickUs);
    for (const t of this.tenants) t.closeOpen();
    this.checkPool();
    return this.result();
  }

  /** Throws naming the broken pool invariant. */
  private checkPool(): void {
    const broken = this.pool.brokenInvariant();
    if (broken !== 0) throw new Error(`colocate (${this.strategy}): INV-POOL-${broken} broken after operation ${this.operations}`);
  }

  private applyOp(tenant: TenantRun, run: SegmentRun): void {
    const saved = this.bill;
    this.bill = run;
    const ok = tenant.apply(run);
    this.bill = saved;
    if (ok) return;
    if (tenant.kind === "inference") {
      run.failed = true;
      return;
    }
    // training out of memory: the step is lost, its blocks freed, and it runs again later
    tenant.drop(run);
    tenant.end(run, this.nowUs, false);
    if (this.strategy === "handover") this.pool.drain(tenant.index);
  }

  private endFinished(tenant: TenantRun): void {
    for (const run of [...tenant.running]) {
      if (!tenant.finished(run)) continue;
      tenant.end(run, this.nowUs, !run.failed);
      if (tenant.kind === "training" && this.strategy === "handover") this.pool.drain(tenant.index); // the step's end drains its queue
    }
  }

  acquire(tenant: number, n: number): number[] | null {
    const t = this.tenants[tenant];
    if (this.strategy === "sp-50" || this.strategy === "sp-75") {
      const used = this.groupUse(t);
      return used + n <= this.quota[tenant] ? this.claim(tenant, n, false) : null;
    }
    const fromReserve = this.strategy === "handover" && t.kind === "inference";
    const got = this.claim(tenant, n, fromReserve);
    // only a tenant above the lender (the first training tenant) in priority may take its memory
    if (got !== null || t.kind !== "inference" || this.training === null || this.inHandover || t.spec.priority <= this.training.spec.priority) return got;
    this.inHandover = true;
    try {
      return this.strategy === "handover" ? this.siriusHandover(tenant, n) : this.freeThenMalloc(tenant, n);
    } finally {
      this.inHandover = false;
    }
  }

  giveBack(tenant: number, chunks: number[]): void {
    const t = this.tenants[tenant];
    if (this.strategy !== "handover") {
      this.pool.release(tenant, chunks);
      return;
    }
    if (t.kind === "training") {
      this.pool.release(tenant, chunks, true); // kTrainLocalFree until training's queue drains
      return;
    }
    this.pool.release(tenant, chunks);
    this.pool.reserve(chunks.length);
    const w = this.watermarkChunks;
    if (this.pool.reservedChunks >= 2 * w) this.pool.unreserve(this.pool.reservedChunks - w); // the 2W rule: back to training down to W
  }

  charge(tenant: number, call: DriverCall, bytes: number, mappings = 1): void {
    const micros = this.callMicros(this.tenants[tenant].kind, call, bytes) * mappings;
    if (this.bill !== null) this.bill.acquireUs += micros;
  }

  private callMicros(kind: "training" | "inference", call: DriverCall, bytes: number): number {
    if (this.strategy !== "handover") return driverMicros(call, bytes);
    const chunks = Math.ceil(bytes / CHUNK_BYTES);
    switch (call) {
      // claims and releases are tag flips: the chunks were created once, when the pool was
      case "memCreate":
      case "memRelease":
        return 0;
      // inference maps the whole pool once at start (Sirius' static mapping region); training
      // maps what it claims (dynamic region), and unmaps lazily, at its next allocation
      case "map":
      case "setAccess":
      case "unmap":
        return kind === "inference" ? 0 : driverMicros(call, bytes);
      case "malloc":
        return kind === "inference" ? 0 : chunks * (driverMicros("map", CHUNK_BYTES) + driverMicros("setAccess", CHUNK_BYTES));
      case "free":
        return kind === "inference" ? 0 : chunks * driverMicros("unmap", CHUNK_BYTES);
      case "memset":
        return driverMicros(call, bytes);
    }
  }

  /**
   * Dedup: the block's whole chunks mapped read-only from the pool's registry (the first tenant
   * with a digest publishes it: one chunk, zero-filled where needed, then its content loaded);
   * false when the pool has no chunk for a first publication (the block is then the tenant's own).
   */
  private mapContent(tenant: number, block: ParameterBlock): boolean {
    let mine = this.mapped.get(tenant);
    if (!mine) this.mapped.set(tenant, (mine = new Map()));
    const done: number[] = [];
    for (const digest of block.digests) {
      let key = this.contentKeys.get(digest);
      if (key === undefined) this.contentKeys.set(digest, (key = this.contentKeys.size));
      const n = mine.get(key) ?? 0;
      if (n === 0) {
        const before = this.pool.zeroFillMicros;
        const c = this.pool.mapShared(tenant, key);
        if (this.bill !== null) this.bill.acquireUs += this.pool.zeroFillMicros - before;
        if (c === null) {
          for (const k of done) this.unmapContent(tenant, k);
          return false;
        }
      }
      mine.set(key, n + 1);
      done.push(key);
    }
    return true;
  }

  private unmapContent(tenant: number, key: number): void {
    const mine = this.mapped.get(tenant)!;
    const n = mine.get(key)!;
    if (n === 1) {
      mine.delete(key);
      this.pool.unmapShared(tenant, key);
    } else mine.set(key, n - 1);
  }

  /** pool.claim, with the zero-fill it did charged to whoever waits */
  private claim(tenant: number, n: number, fromReserve: boolean): number[] | null {
    const before = this.pool.zeroFillMicros;
    const got = this.pool.claim(tenant, n, fromReserve);
    if (this.bill !== null) this.bill.acquireUs += this.pool.zeroFillMicros - before;
    return got;
  }

  /** chunks the tenant's partition holds (SP): training's own, or all inference tenants' */
  private groupUse(t: TenantRun): number {
    let used = 0;
    for (const u of this.tenants) if (u.kind === t.kind) used += this.pool.heldCount(u.index) + this.pool.localFreeCount(u.index);
    return used;
  }

  private trainingChunks(): number {
    const i = this.training!.index;
    return this.pool.heldCount(i) + this.pool.localFreeCount(i);
  }

  /** Sirius: an adjustment takes training's cached chunks, then its current batch; W stays warm. */
  private siriusHandover(tenant: number, n: number): number[] | null {
    const train = this.training!;
    const waiting = this.bill;
    const before = this.trainingChunks();
    const startUs = waiting?.acquireUs ?? 0;
    if (waiting) waiting.acquireUs += ADJUST_US;
    this.bill = null; // training's lazy unmaps are its own time, not the request's
    train.wasm.policyEmptyCache();
    this.pool.drain(train.index);
    this.bill = waiting;
    let kind: Handover["kind"] = "cache";
    let got = this.claim(tenant, n, true);
    const step = train.currentStep();
    if (got === null && step !== null) {
      kind = "discard";
      this.bill = null;
      train.drop(step);
      train.end(step, this.nowUs, false);
      train.wasm.policyEmptyCache();
      this.pool.drain(train.index);
      this.bill = waiting;
      got = this.claim(tenant, n, true);
    }
    if (got !== null) this.pool.reserve(Math.min(this.watermarkChunks, this.pool.unreservedFreeChunks)); // adjust by need + W
    this.record(tenant, kind, before, (waiting?.acquireUs ?? 0) - startUs);
    return got;
  }

  /** PyTorch across processes: wait for training's step to end, training empties its cache, then malloc. */
  private freeThenMalloc(tenant: number, n: number): number[] | null {
    const train = this.training!;
    const waiting = this.bill;
    const before = this.trainingChunks();
    const startUs = waiting?.acquireUs ?? 0;
    const step = train.currentStep();
    if (step !== null) {
      // the request waits while training finishes its step (its operations run now, at their times)
      const endUs = step.startUs + step.ops.atUs[step.ops.length - 1];
      this.bill = null;
      while (!train.finished(step) && train.running.includes(step)) this.applyOp(train, step);
      if (train.running.includes(step)) train.end(step, endUs, !step.failed);
      this.bill = waiting;
      if (waiting) waiting.acquireUs += Math.max(0, endUs - this.nowUs);
    }
    train.wasm.policyEmptyCache(); // cudaFree of every cached segment, on the request's time
    const got = this.claim(tenant, n, false);
    this.record(tenant, "wait", before, (waiting?.acquireUs ?? 0) - startUs);
    return got;
  }

  private record(tenant: number, kind: Handover["kind"], trainingBefore: number, latencyUs: number): void {
    const gave = Math.max(0, trainingBefore - this.trainingChunks());
    this.gaveUpChunks += gave;
    this.handovers.push({ atS: this.nowUs / 1e6, tenant: this.tenants[tenant].spec.name, kind, bytes: gave * CHUNK_BYTES, latencyUs });
  }

  /** The monitor: samples the pool, and (handover) gives idle inference tenants' cache to the reserve. */
  private tick(atUs: number): void {
    if (this.strategy === "handover") {
      const idleUs = this.scenario.idleS * 1e6;
      for (const t of this.tenants) {
        if (t.kind !== "inference" || t.running.length > 0 || atUs - t.lastActiveUs < idleUs) continue;
        const saved = this.bill;
        this.bill = null;
        t.wasm.policyEmptyCache();
        this.bill = saved;
        t.lastActiveUs = atUs; // evicted once per idle period
      }
    }
    let training = 0;
    let inference = 0;
    for (const t of this.tenants) {
      const c = this.pool.heldCount(t.index) + this.pool.localFreeCount(t.index);
      if (t.kind === "training") training += c;
      else inference += c;
    }
    this.peakUsedChunks = Math.max(this.peakUsedChunks, this.pool.chunks - this.pool.freeChunks);
    this.timeline.push({
      tS: atUs / 1e6,
      sharedBytes: this.pool.sharedChunks * CHUNK_BYTES,
      trainingBytes: training * CHUNK_BYTES,
      inferenceBytes: inference * CHUNK_BYTES,
      reservedBytes: this.pool.reservedChunks * CHUNK_BYTES,
      freeBytes: this.pool.unreservedFreeChunks * CHUNK_BYTES,
    });
  }

  private result(): StrategyRun {
    const requests = this.tenants.flatMap((t) => t.requests);
    const served = requests.filter((r) => !r.failed).map((r) => r.acquireUs).sort((a, b) => a - b);
    const slo = this.scenario.sloMs * 1000;
    const handoverLatency = this.handovers.map((h) => h.latencyUs).sort((a, b) => a - b);
    const mean = (pick: (p: TimelinePoint) => number) => (this.timeline.length === 0 ? 0 : this.timeline.reduce((s, p) => s + pick(p), 0) / this.timeline.length);
    return {
      strategy: this.strategy,
      dedup: (this.options.parameters ?? []).some((p) => p !== null),
      peakUsedBytes: this.peakUsedChunks * CHUNK_BYTES,
      sharedChunks: this.pool.sharedChunks,
      requests: requests.length,
      failedRequests: requests.length - served.length,
      acquireP50Us: percentile(served, 0.5),
      acquireP99Us: percentile(served, 0.99),
      acquireMaxUs: served.length ? served[served.length - 1] : 0,
      withinSloShare: requests.length === 0 ? 1 : requests.filter((r) => !r.failed && r.acquireUs <= slo).length / requests.length,
      trainingStepsCompleted: this.training?.stepsCompleted ?? 0,
      trainingStepsLost: this.training?.stepsLost ?? 0,
      trainingGaveUpBytes: this.gaveUpChunks * CHUNK_BYTES,
      trainingMeanBytes: mean((p) => p.trainingBytes),
      inferenceMeanBytes: mean((p) => p.inferenceBytes),
      zeroFills: this.pool.zeroFills,
      handoverP50Us: percentile(handoverLatency, 0.5),
      handoverP99Us: percentile(handoverLatency, 0.99),
      handovers: this.handovers,
      timeline: this.timeline,
      perTenant: this.tenants.map((t) => {
        const lat = t.requests.filter((r) => !r.failed).map((r) => r.acquireUs).sort((a, b) => a - b);
        return { name: t.spec.name, kind: t.kind, requests: t.requests.length, failed: t.requests.filter((r) => r.failed).length, acquireP99Us: percentile(lat, 0.99), stepsCompleted: t.stepsCompleted, stepsLost: t.stepsLost };
      }),
      operations: this.operations,
    };
  }
}

/** The nearest-rank percentile of sorted values (0 for none). */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
