import { describeOp, MiB, type Op } from "../generators/program.js";
import type { AllocatorUnderTest, LiveBlock, PolicyUnderTest } from "./allocator-under-test.js";
import {
  checkBlockShape,
  checkDisjoint,
  checkPhysical,
  checkReleased,
  checkReserved,
  checkTiling,
  fail,
  Violation,
} from "./guarantees.js";
import { checkStats } from "./stats-identities.js";
import { StreamTaints } from "./stream-taints.js";

/**
 * The reference model and the policy side by side. The model is the plain truth of what the caller
 * did: which of its allocations are live, with which request and stream, what limit it set, how many
 * mallocs failed. After every step the harness checks the policy's report against the model and the
 * guarantees in guarantees.ts; the first broken guarantee throws a StepFailure naming the step.
 */
export class StepFailure extends Error {
  constructor(
    readonly guarantee: string,
    readonly stepIndex: number,
    readonly op: Op,
    readonly detail: string,
  ) {
    super(`${guarantee} at step ${stepIndex} (${describeOp(op)}): ${detail}`);
  }
}

/** What one step gave back, for comparing two runs of the same program. */
export type StepResult = { address: number; sizeBytes: number } | null | "-";

interface LiveRecord {
  handle: number;
  address: number;
  sizeBytes: number;
  requestedBytes: number;
  stream: number;
}

/**
 * With no limit, live bytes + request up to this share of the device must always be served: the
 * rest is room for the policy's rounding and fragmentation (1 TiB when the device is unbounded).
 */
const UNLIMITED_SHARE = 1 / 4;
const UNBOUNDED_REQUEST_BYTES = 2 ** 40;
/**
 * G-OOM with nothing live: the request, rounded (roundup_power2_divisions:1 at most doubles it),
 * plus the policy's own segment rounding (PyTorch's largest: 20 MiB), must be served under a limit.
 */
const ROUNDING_FACTOR = 2;
const SEGMENT_SLACK_BYTES = 20 * MiB + 2 * MiB;

/**
 * G-VALID checks the policy's own isValid() at two levels: the local check of what the step changed
 * after every step, and the whole walk every FULL_CHECK_EVERY steps and after the last one (as a
 * replay does with `--check`). The walk's period is short next to a program (up to 120 steps), so
 * a mistake only the walk sees still fails the run that made it.
 */
export const FULL_CHECK_EVERY = 16;

export class CheckedAllocator {
  readonly ops: Op[] = [];
  readonly results: StepResult[] = [];
  private readonly aut: AllocatorUnderTest;
  private readonly live = new Map<number, LiveRecord>();
  private readonly failed = new Set<number>();
  private readonly used = new Set<number>();
  private capacityBytes: number | null = null;
  private ooms = 0;
  private prevStats: Record<string, number> | null = null;
  private peak = { count: 0, bytes: 0, requested: 0, reserved: 0 };
  private liveBytes = 0;
  private requestedBytes = 0;
  private readonly taints: StreamTaints;
  private readonly unlimitedBytes: number;

  constructor(readonly policy: PolicyUnderTest) {
    this.aut = policy.create();
    this.taints = new StreamTaints(policy.virtualMemory && this.aut.physicalMappings !== undefined);
    this.unlimitedBytes = policy.deviceBytes === undefined ? UNBOUNDED_REQUEST_BYTES : policy.deviceBytes * UNLIMITED_SHARE;
  }

  /** program ids of live allocations, oldest first */
  liveIds(): number[] {
    return [...this.live.keys()];
  }

  apply(op: Op): void {
    const step = this.ops.length;
    this.ops.push(op);
    try {
      this.results.push(this.execute(op));
      this.drainDeviceEvents();
      this.checkState(op);
    } catch (e) {
      if (e instanceof Violation) throw new StepFailure(e.guarantee, step, op, e.detail);
      if (e instanceof StepFailure) throw e;
      throw new StepFailure("G-NO-THROW", step, op, `the policy threw: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  /** After the last step: the whole walk of G-VALID (the steps' own checks ran in apply). */
  finish(): void {
    const step = this.ops.length - 1;
    if (step < 0 || step % FULL_CHECK_EVERY === FULL_CHECK_EVERY - 1) return;
    let valid: boolean;
    try {
      valid = this.aut.isValid("full");
    } catch (e) {
      throw new StepFailure("G-NO-THROW", step, this.ops[step], `the policy threw: ${(e as Error)?.message ?? String(e)}`);
    }
    if (!valid) throw new StepFailure("G-VALID", step, this.ops[step], "isValid() (the whole walk, after the last step) returned false");
  }

  /** the statistics after the last step */
  finalStats(): Record<string, number> {
    return this.aut.stats();
  }

  dispose(): void {
    this.aut.dispose();
  }

  private execute(op: Op): StepResult {
    switch (op.op) {
      case "alloc":
        return this.malloc(op);
      case "free": {
        if (this.failed.has(op.id)) return "-";
        const rec = this.live.get(op.id);
        if (!rec) throw new Error(`program error: free of #${op.id} that is not live`);
        this.taints.freed(rec.address, rec.sizeBytes, rec.stream);
        this.aut.free(rec.handle);
        this.live.delete(op.id);
        this.liveBytes -= rec.sizeBytes;
        this.requestedBytes -= rec.requestedBytes;
        return "-";
      }
      case "emptyCache":
        this.aut.emptyCache();
        return "-";
      case "setCapacity":
        if (this.aut.setCapacity(op.bytes)) this.capacityBytes = op.bytes;
        return "-";
    }
  }

  private malloc(op: Extract<Op, { op: "alloc" }>): StepResult {
    if (this.used.has(op.id)) throw new Error(`program error: id #${op.id} allocated twice`);
    this.used.add(op.id);
    const reservedBefore = this.reserved();
    const a = this.aut.malloc(op.bytes, op.stream);
    const reservedAfter = this.reserved();
    if (this.capacityBytes !== null && reservedAfter > reservedBefore && reservedAfter > this.capacityBytes + (this.policy.capacitySlackBytes ?? 0)) {
      fail("G-CAPACITY", `reserved grew from ${reservedBefore} B to ${reservedAfter} B, past the limit of ${this.capacityBytes} B`);
    }
    if (a === null) {
      this.ooms++;
      this.failed.add(op.id);
      if (this.capacityBytes === null && this.liveBytes + op.bytes <= this.unlimitedBytes) {
        fail("G-OOM", `out of memory with no limit, ${this.liveBytes} B live`);
      }
      if (this.capacityBytes !== null && this.live.size === 0 && ROUNDING_FACTOR * op.bytes + SEGMENT_SLACK_BYTES <= this.capacityBytes) {
        fail("G-OOM", `out of memory with nothing live and a limit of ${this.capacityBytes} B`);
      }
      return null;
    }
    checkBlockShape(a, op.bytes);
    for (const r of this.live.values()) if (r.handle === a.handle) fail("G-MODEL", `handle ${a.handle} given to two live blocks`);
    this.checkStream(a.address, a.address + a.sizeBytes, op.stream);
    this.live.set(op.id, { handle: a.handle, address: a.address, sizeBytes: a.sizeBytes, requestedBytes: op.bytes, stream: op.stream });
    this.liveBytes += a.sizeBytes;
    this.requestedBytes += op.bytes;
    return { address: a.address, sizeBytes: a.sizeBytes };
  }

  private reserved(): number {
    let total = 0;
    for (const r of this.aut.reservedRanges()) total += r.sizeBytes;
    return total;
  }

  /** G-STREAM: the block holds no memory another stream freed since it last went back to the device */
  private checkStream(start: number, end: number, stream: number): void {
    if (!this.aut.drainDeviceEvents) return;
    this.drainDeviceEvents();
    this.taints.handedOut(start, end - start, stream, this.taints.physical ? this.aut.physicalMappings!() : []);
  }

  private drainDeviceEvents(): void {
    if (this.aut.drainDeviceEvents) this.taints.released(this.aut.drainDeviceEvents());
  }

  private checkState(op: Op): void {
    const step = this.ops.length - 1;
    if (!this.aut.isValid("local")) fail("G-VALID", "isValid() (the local check) returned false");
    if (step % FULL_CHECK_EVERY === FULL_CHECK_EVERY - 1 && !this.aut.isValid("full")) fail("G-VALID", "isValid() (the whole walk) returned false");
    const blocks = this.aut.liveBlocks();
    this.checkModel(blocks);
    checkDisjoint(blocks);
    const layout = this.aut.layout?.();
    const ranges = layout ?? this.aut.reservedRanges();
    if (layout) checkTiling(layout);
    const mappings = this.policy.virtualMemory ? this.aut.physicalMappings?.() : undefined;
    checkReserved(ranges, blocks, mappings === undefined);
    if (mappings) checkPhysical(mappings, blocks);
    if (this.taints.physical) this.taints.remember(mappings ?? this.aut.physicalMappings!());
    if (op.op === "emptyCache") checkReleased(ranges, blocks, mappings);

    const reservedBytes = ranges.reduce((s, r) => s + r.sizeBytes, 0);
    this.peak.count = Math.max(this.peak.count, this.live.size);
    this.peak.bytes = Math.max(this.peak.bytes, this.liveBytes);
    this.peak.requested = Math.max(this.peak.requested, this.requestedBytes);
    this.peak.reserved = Math.max(this.peak.reserved, reservedBytes);
    const stats = this.aut.stats();
    checkStats(stats, this.prevStats, {
      liveCount: this.live.size,
      liveBytes: this.liveBytes,
      requestedBytes: this.requestedBytes,
      reservedBytes,
      peakLiveCount: this.peak.count,
      peakLiveBytes: this.peak.bytes,
      peakRequestedBytes: this.peak.requested,
      peakReservedBytes: this.peak.reserved,
      ooms: this.ooms,
    });
    this.prevStats = stats;
  }

  /** G-MODEL: the policy's live blocks are exactly the caller's, where the caller was told */
  private checkModel(blocks: readonly LiveBlock[]): void {
    if (blocks.length !== this.live.size) fail("G-MODEL", `the policy reports ${blocks.length} live blocks, the caller holds ${this.live.size}`);
    const byHandle = new Map(blocks.map((b) => [b.handle, b]));
    for (const [id, r] of this.live) {
      const b = byHandle.get(r.handle);
      if (!b) fail("G-MODEL", `allocation #${id} (handle ${r.handle}) is missing from the live blocks`);
      if (b.address !== r.address || b.sizeBytes !== r.sizeBytes) {
        fail("G-MODEL", `allocation #${id} moved or changed size: [0x${r.address.toString(16)}, +${r.sizeBytes}) is now [0x${b.address.toString(16)}, +${b.sizeBytes})`);
      }
      if (b.requestedBytes !== r.requestedBytes) fail("G-MODEL", `allocation #${id} requested ${r.requestedBytes} B, the policy says ${b.requestedBytes} B`);
      if (b.stream !== r.stream) fail("G-MODEL", `allocation #${id} is on stream ${r.stream}, the policy says ${b.stream}`);
    }
  }
}

/** What a whole program gave: the result of every step and the final statistics. */
export interface ProgramRun {
  results: StepResult[];
  finalStats: Record<string, number>;
}

/** Runs a program on a fresh instance of the policy, checking every step; throws StepFailure. */
export function runProgram(policy: PolicyUnderTest, ops: readonly Op[]): ProgramRun {
  const h = new CheckedAllocator(policy);
  try {
    for (const o of ops) h.apply(o);
    h.finish();
    return { results: h.results, finalStats: h.finalStats() };
  } finally {
    h.dispose();
  }
}

/** G-DETERMINISM: a second run of the program on a fresh instance gives the same results. */
export function checkDeterminism(policy: PolicyUnderTest, ops: readonly Op[], first: ProgramRun): void {
  const again = runProgram(policy, ops);
  for (let i = 0; i < ops.length; i++) {
    const a = JSON.stringify(first.results[i]);
    const b = JSON.stringify(again.results[i]);
    if (a !== b) throw new StepFailure("G-DETERMINISM", i, ops[i], `first run gave ${a}, second run ${b}`);
  }
  for (const k of new Set([...Object.keys(first.finalStats), ...Object.keys(again.finalStats)])) {
    if (first.finalStats[k] !== again.finalStats[k]) {
      throw new StepFailure("G-DETERMINISM", ops.length - 1, ops[ops.length - 1], `final ${k} was ${first.finalStats[k]}, then ${again.finalStats[k]}`);
    }
  }
}

/** Runs a program twice, checking every guarantee; throws StepFailure on the first broken one. */
export function checkProgram(policy: PolicyUnderTest, ops: readonly Op[]): void {
  const first = runProgram(policy, ops);
  if (ops.length > 0) checkDeterminism(policy, ops, first);
}
