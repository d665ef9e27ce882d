// replayDevice: one device's trace through a policy in a fresh Wasm instance. The columns are
// copied into the instance's memory once; the loop runs inside the Wasm, in chunks so that the
// caller can draw progress without a JavaScript call per event.
import type { BlockStateKind, DeviceTrace, SegmentState } from "@lakebed/traces";
import { type AllocatorConf } from "./conf.js";
import { DEVICE_CALL_NAMES } from "./device-calls.js";
import { inferDeviceTotalBytes } from "./device-total.js";
import { STAT_NAMES } from "./stats-table.js";
import { invariantName, policyEntry, type PolicyEntry, type PolicyName } from "./policy-registry.js";
import { handUses, hostArenaBytes, type ClockCalibration, type ShrinkRequest } from "./use-clock.js";
import { PolicyInternalError } from "./policy-internal-error.js";
import { startStatePrologue } from "./start-state-prologue.js";
import { segmentsRebuilt, stateCounts, type StartStateReport } from "./start-state-report.js";
import { CoreSimAbort, DEVICE_IMPORTED, DEVICE_SIMULATED, POLICY_CODES, applyConf, instantiate, type CoreSimExports, type DeviceImports } from "./wasm.js";

/** What cudaMemGetInfo reports as total on the H100 80GB HBM3 that recorded the shared traces. */
export const H100_TOTAL_BYTES = 85_017_493_504;

/**
 * The whole walk's period when the local check runs after every event (checkLocal: `lakebed
 * replay --check`, the tests' "valid after every event"): the walk is what sees every record at
 * once (the free sets' shape, recomputed statistics, no chunk at two places). On gpt2_ckpt
 * (334,387 events) under lakebed the local check after every event plus this walk take about 3 s,
 * against 142 s for the walk after every event.
 */
const FULL_CHECK_EVERY = 1024;

export interface ReplayOptions {
  policy: PolicyName;
  conf: AllocatorConf;
  /**
   * PyTorch's per-process limit in bytes (set_per_process_memory_fraction x total memory): the
   * allocator frees cached memory and retries, then reports out of memory, at this limit; it also
   * turns garbage_collection_threshold on. Default: no limit (conf.perProcessMemoryFraction x
   * deviceTotalBytes when the settings name a fraction).
   */
  capacityBytes?: number;
  /**
   * the device's total memory (sizes expandable reservations); default the trace's own where its
   * recorder says it (DeviceTrace.deviceTotalBytes), else H100_TOTAL_BYTES, or less where the
   * trace's expandable reservations show a smaller device (device-total.ts)
   */
  deviceTotalBytes?: number;
  /** take segment base addresses from the trace where it has them (default true) */
  traceAddresses?: boolean;
  /**
   * The policy's invariant checks (its isValid(), at two levels as mimalloc's cheap and expensive
   * assertions); a broken invariant throws, naming the event. `checkLocal`: the local check after
   * every event, which looks only at what the event changed (the blocks, their neighbours, their
   * pages or chunks), and the whole walk every 1,024 events and at the end; cheap enough for every
   * test. `checkEvery`: the whole walk after every N events and at the end (default 0: never, or
   * 1,024 with checkLocal; 1: the walk after every event, slow on long traces).
   */
  checkEvery?: number;
  checkLocal?: boolean;
  onProgress?(done: number, total: number): void;
  /** record a timeline of about this many points (the highest value in each window of events) */
  timelinePoints?: number;
  /** capture the segment layout right after this event index */
  layoutAtEvent?: number;
  /**
   * Live replay: the policy runs on the imported device, whose calls go to these imports (bound to
   * a native-cuda Driver by packages/api's live replay). Default: the simulated device.
   */
  deviceImports?: DeviceImports;
  /** live replay only: fill every allocation with the check pattern, check it before its free */
  verifyData?: boolean;
  /**
   * Policies that read use events (tiering): the step time measured without the recorder, which
   * the computation clock of the stall estimate is scaled to (use-clock.ts; the CLI reads it from
   * the recording's .stats.json). Default: the clock as recorded.
   */
  clockCalibration?: ClockCalibration;
  /** tiering: serverless shrinks at idle gaps or given events, and the blocks they may drop (use-clock.ts) */
  shrink?: ShrinkRequest;
  /**
   * Another build of the same source and the globals it imports (wasm.ts instantiate): the tests
   * run the broken-variants build (scripts/build-test.mjs) through the whole replay with it.
   */
  wasmBuild?: { module: WebAssembly.Module; globals: Record<string, number> };
  /** simulated device only: record every device call in order (result.callLog) */
  callLog?: boolean;
  /**
   * A trace recorded mid-run (its initialState is not empty): "adopt" hands the rebuilt state to
   * the policy without a device call, at the trace's addresses (the simulator's default); a live
   * device cannot adopt memory it never allocated, so it "materialize"s: the policy allocates the
   * start state through its device before the trace's first event (start-state-prologue.ts says
   * how, and what can differ). The simulator materializes too when asked, making the live replay's
   * calls (the differential check).
   */
  startState?: "adopt" | "materialize";
}

/** Device calls in the order the policy made them: kinds index DEVICE_CALL_NAMES. */
export interface DeviceCallLog {
  kinds: Uint8Array;
  bytes: Float64Array;
}

export interface SegmentEvent {
  /** the trace event being replayed when the policy made this device call; -1 while materializing the start state */
  eventIndex: number;
  /** Action.SegmentAlloc, SegmentFree, SegmentMap or SegmentUnmap */
  action: number;
  addr: number;
  size: number;
}

export interface Timeline {
  /** the last event of each window */
  eventIndex: number[];
  allocatedBytes: number[];
  reservedBytes: number[];
}

export interface DeviceReplayResult {
  device: number;
  events: number;
  peakAllocatedBytes: number;
  peakReservedBytes: number;
  peakRequestedBytes: number;
  /** the first event after which reserved memory stood at its peak (-1: never above 0) */
  peakReservedEventIndex: number;
  /** device allocations: cudaMalloc calls and expandable-segment maps (num_device_alloc) */
  deviceAllocs: number;
  /** device frees: cudaFree calls and unmaps (num_device_free) */
  deviceFrees: number;
  /** mallocs the policy could not serve (num_ooms): the trace's own oom events and any new ones */
  ooms: number;
  allocRetries: number;
  /** alloc events of the trace the policy could not serve (their frees are skipped) */
  failedAllocs: number;
  /** oom events of the trace the policy served (then freed at once) */
  unexpectedOomSuccesses: number;
  /** segment_free/unmap bursts replayed as torch.cuda.empty_cache() */
  emptyCacheCalls: number;
  /**
   * alloc events the policy placed at another address than the trace recorded (0 for an exact
   * replay), and the first such event (-1: none)
   */
  addressMismatches: number;
  firstAddressMismatchEventIndex: number;
  /** every statistic, named as torch.cuda.memory_stats() names it */
  stats: Record<string, number>;
  /** the policy's own segment_alloc/free/map/unmap, in order */
  segmentEvents: SegmentEvent[];
  finalSegments: SegmentState[];
  /** driver calls the simulated device served, by native-cuda's call names (only those made) */
  driverCalls: Record<string, number>;
  /** simulated seconds spent in driver calls (H100 cost model) */
  allocatorSeconds: number;
  /** the policy's own counters (vms: stitches made, reused, collected; lakebed: chunk moves) */
  policyCounters: Record<string, number>;
  timeline?: Timeline;
  layoutAtEvent?: SegmentState[];
  /** with callLog: every device call of the simulated device, in order */
  callLog?: DeviceCallLog;
  /** with verifyData: allocations whose pattern was checked, how many had changed, and the first
   * event where one had (-1: none; 0 when it was found while materializing the start state) */
  verifiedAllocations?: number;
  verifyFailures?: number;
  firstVerifyFailureEventIndex?: number;
  /**
   * policies that read use events, on the simulated device: uses whose block was not wholly mapped
   * with access when its operator ran, checked against the device's mappings (a GPU would fault)
   */
  usesWithoutAccess?: number;
  /** policies that read use events: the computation time of the trace (use-clock.ts), NaN without time */
  computeSeconds?: number;
  /**
   * A trace recorded mid-run: how the policy took its start state and what it held when the trace
   * began. With method "materialized", every statistic, peak and call count above includes the
   * materialization's allocations (the indices above are the trace's events; a peak reached while
   * materializing reads as event 0).
   */
  startState?: StartStateReport;
}

const CHUNK_EVENTS = 1 << 16;
/** The replay's own counters by index (assembly/replay/replay.ts, COUNTER_*). */
const COUNTER_FAILED_ALLOCS = 0;
const COUNTER_UNEXPECTED_OOM_SUCCESSES = 1;
const COUNTER_EMPTY_CACHE_CALLS = 2;
const COUNTER_ADDRESS_MISMATCHES = 5;
const COUNTER_VERIFIED_ALLOCATIONS = 6;
const COUNTER_VERIFY_FAILURES = 7;
const COUNTER_USES_WITHOUT_ACCESS = 8;
const BLOCK_STATES: BlockStateKind[] = ["allocated", "pending_free", "inactive"];
const STATE_CODES: Record<BlockStateKind, number> = { allocated: 0, pending_free: 1, inactive: 2 };

/**
 * Why `policy` cannot do its work on this trace, or null: a policy that reads use events (tiering)
 * on a device without any. One line, for the CLI's refusal.
 */
export function useEventsMissing(trace: DeviceTrace, policy: PolicyName): string | null {
  if (!(policyEntry(policy) as PolicyEntry).readsUses || (trace.access && trace.access.uses.length > 0)) return null;
  return `policy ${policy} needs a trace with use events (which blocks each operator touches), and device ${trace.device} has none: record one with python/lakebed_record.py (README: recording accesses) and keep its NAME.access.json.gz beside the snapshot`;
}

export function replayDevice(trace: DeviceTrace, opts: ReplayOptions): DeviceReplayResult {
  const session = new DeviceReplay(trace, opts);
  while (!session.done) session.step();
  return session.result();
}

/**
 * One device's replay, run a chunk at a time: replayDevice runs it to the end at once; a live
 * replay yields to the event loop between chunks (so that SIGINT can stop it and tear down).
 */
/** The device a trace replays on: its total memory and PyTorch's per-process limit (0: none). */
function deviceSize(trace: DeviceTrace, opts: Pick<ReplayOptions, "conf" | "capacityBytes" | "deviceTotalBytes">): { total: number; capacity: number } {
  const total = opts.deviceTotalBytes ?? trace.deviceTotalBytes ?? inferDeviceTotalBytes(trace, H100_TOTAL_BYTES);
  const fraction = opts.conf.perProcessMemoryFraction;
  const capacity = opts.capacityBytes ?? (fraction !== null ? Math.floor(fraction * total) : 0);
  return { total, capacity };
}

/**
 * The physical bytes the device model holds for this trace, max(total, limit): the simulated device
 * refuses memCreate and malloc beyond them. A live replay opens its driver with this capacity so
 * that the driver refuses the same calls (host memory would otherwise grant far more than any GPU,
 * and an expandable segment would map past its reservation's pages).
 */
export function modelCapacityBytes(trace: DeviceTrace, opts: Pick<ReplayOptions, "conf" | "capacityBytes" | "deviceTotalBytes">): number {
  const { total, capacity } = deviceSize(trace, opts);
  return Math.max(total, capacity);
}

export class DeviceReplay {
  readonly wasm: CoreSimExports;
  /** the trace's events (without a materialized start state's) */
  readonly events: number;
  /** events replayed before the trace's first: the materialized start state (INV-PRO-1) */
  private readonly prologue: number;
  /** position in the replayed columns (prologue, then the trace's events) */
  private from = 0;
  private layoutAtEvent: SegmentState[] | undefined;
  private startState: StartStateReport | undefined;
  private readonly checkEvery: number;

  constructor(
    private readonly trace: DeviceTrace,
    private readonly opts: ReplayOptions,
  ) {
    const live = opts.deviceImports !== undefined;
    const conf = opts.conf;
    const { total, capacity } = deviceSize(trace, opts);
    const entry = policyEntry(opts.policy); // an unknown name throws one line naming the registered policies
    const midRun = trace.initialState.length > 0;
    if (live && opts.startState === "adopt" && midRun) {
      throw new Error(`trace device ${trace.device} starts mid-run: a live device cannot adopt memory it never allocated (materialize the start state instead)`);
    }
    const materialize = midRun && (live || opts.startState === "materialize");
    if (live && opts.traceAddresses !== false) throw new Error("a live replay cannot take addresses from the trace (set traceAddresses: false)");
    if (materialize && opts.traceAddresses !== false) throw new Error("a materialized start state cannot take addresses from the trace (set traceAddresses: false)");
    if (opts.verifyData && !live) throw new Error("verifyData needs a live device (deviceImports)");
    const wasm = opts.wasmBuild ? instantiate(opts.deviceImports, opts.wasmBuild.module, opts.wasmBuild.globals) : instantiate(opts.deviceImports);
    this.wasm = wasm;
    wasm.setup(POLICY_CODES[opts.policy], live ? DEVICE_IMPORTED : DEVICE_SIMULATED, capacity, total);
    applyConf(wasm, conf);

    const prologue = materialize ? startStatePrologue(trace, conf, entry.rebuildsRecordedLayout === true) : null;
    this.prologue = prologue?.events ?? 0;
    this.events = trace.events.length;
    const replayed = prologue?.trace ?? trace;
    const ev = replayed.events;
    const n = ev.length;
    let blockIds = trace.initialLiveBlocks;
    for (let i = 0; i < n; i++) if (ev.blockId[i] >= blockIds) blockIds = ev.blockId[i] + 1;
    wasm.eventsAllocate(n, blockIds);
    this.blockIds = blockIds;
    const buf = wasm.memory.buffer;
    new Uint8Array(buf, wasm.eventsAction(), n).set(ev.action);
    new Float64Array(buf, wasm.eventsAddr(), n).set(ev.addr);
    new Float64Array(buf, wasm.eventsSize(), n).set(ev.size);
    new Uint32Array(buf, wasm.eventsStream(), n).set(ev.stream);
    new Int32Array(buf, wasm.eventsBlockId(), n).set(ev.blockId);
    if ((entry as PolicyEntry).readsUses) this.handUses(wasm);
    if (opts.callLog && wasm.deviceCallLogEnable() !== 0) throw new Error("callLog needs the simulated device");
    wasm.start(opts.traceAddresses === false ? 0 : 1, opts.timelinePoints ?? 0);
    if (opts.verifyData) wasm.setVerifyData();
    const marks = trace.emptyCacheAt;
    if (marks !== undefined) {
      // the recorder named its empty_cache calls (replay.ts): replayed where they were, none inferred
      const at = wasm.setEmptyCacheMarks(marks.length);
      new Int32Array(wasm.memory.buffer, at, marks.length).set(marks.map((m) => m + this.prologue));
    }
    this.checkEvery = opts.checkEvery ?? (opts.checkLocal ? FULL_CHECK_EVERY : 0);
    if (opts.checkLocal) wasm.setLocalCheck(1);
    if (midRun && !materialize) {
      adoptInitialState(wasm, trace.initialState);
      this.startState = this.reportStartState("adopted");
    }
  }

  /**
   * A policy that reads use events gets the trace's (use-clock.ts). Without any it runs as it would
   * with nothing to bring back (tiering: the capacity is a plain limit); the CLI refuses that
   * replay (useEventsMissing says why), the library runs it so that every policy replays every trace.
   */
  private handUses(wasm: CoreSimExports): void {
    const { trace, opts } = this;
    const access = trace.access;
    if (!access || access.uses.length === 0) return;
    const hostBytes = opts.conf.tiering.hostMiB !== null ? opts.conf.tiering.hostMiB * 1024 * 1024 : hostArenaBytes(trace);
    wasm.setTieringConf(opts.conf.tiering.victim === "belady" ? 1 : 0, hostBytes);
    this.computeMicros = handUses(wasm, trace, access, opts.clockCalibration, this.blockIds, this.prologue, opts.shrink);
  }

  /** trace block ids the instance holds room for (eventsAllocate) */
  private blockIds = 0;
  /** policies that read use events: the trace's computation time (use-clock.ts), µs */
  private computeMicros = Number.NaN;

  get done(): boolean {
    return this.from >= this.prologue + this.events;
  }

  /** The trace's events replayed so far (0 while the start state is materialized). */
  get position(): number {
    return Math.max(0, this.from - this.prologue);
  }

  /**
   * Replays the next chunk of events: at most `maxEvents` (a live replay sizes its chunks by time,
   * so that a signal between chunks is handled soon; see api/src/live/live-replay.ts).
   */
  step(maxEvents = CHUNK_EVENTS): void {
    const k = this.prologue;
    const n = k + this.events;
    const layoutAt = this.opts.layoutAtEvent === undefined ? undefined : this.opts.layoutAtEvent + k;
    const from = this.from;
    let to = Math.min(n, from + Math.max(1, Math.floor(maxEvents)));
    if (from < k) to = Math.min(to, k); // the start state is reported before the trace's first event
    if (layoutAt !== undefined && from <= layoutAt && layoutAt < to) to = layoutAt + 1;
    run(this.wasm, from, to, this.checkEvery, this.opts.policy, k);
    if (layoutAt !== undefined && to === layoutAt + 1) this.layoutAtEvent = readLayout(this.wasm);
    if (from < k && to === k) this.startState = this.reportStartState("materialized");
    this.from = to;
    this.opts.onProgress?.(Math.max(0, to - k), this.events);
  }

  private reportStartState(method: StartStateReport["method"]): StartStateReport {
    const atStart = readLayout(this.wasm);
    return {
      method,
      recorded: stateCounts(this.trace.initialState),
      atStart: stateCounts(atStart),
      materializingEvents: this.prologue,
      segmentsRebuilt: segmentsRebuilt(this.trace.initialState, atStart),
    };
  }

  /** The results, once done. */
  result(): DeviceReplayResult {
    const { wasm, opts } = this;
    if (opts.layoutAtEvent !== undefined && this.layoutAtEvent === undefined) this.layoutAtEvent = readLayout(wasm);
    if (this.checkEvery > 0 || opts.checkLocal) {
      const broken = wasm.brokenInvariant();
      if (broken !== 0) throw new Error(`policy ${opts.policy}: isValid failed at the end of the trace: ${invariantName(opts.policy, broken)} broken`);
    }
    const result = collect(wasm, this.trace, this.events, this.prologue, opts, this.layoutAtEvent);
    if (opts.callLog) {
      const count = wasm.deviceCallLogCount();
      const buf = wasm.memory.buffer;
      result.callLog = {
        kinds: count ? new Uint8Array(buf, wasm.deviceCallLogKinds(), count).slice() : new Uint8Array(0),
        bytes: count ? new Float64Array(buf, wasm.deviceCallLogBytes(), count).slice() : new Float64Array(0),
      };
    }
    if ((policyEntry(opts.policy) as PolicyEntry).readsUses) {
      result.usesWithoutAccess = wasm.replayCounter(COUNTER_USES_WITHOUT_ACCESS);
      result.computeSeconds = this.computeMicros / 1e6;
      const peak = result.policyCounters.peakDeviceBytes;
      const capacity = result.policyCounters.capacityBytes;
      if (capacity > 0 && peak > capacity) throw new Error(`policy ${opts.policy}: the device held ${peak} bytes, past the capacity of ${capacity}`);
    }
    if (opts.verifyData) {
      result.verifiedAllocations = wasm.replayCounter(COUNTER_VERIFIED_ALLOCATIONS);
      result.verifyFailures = wasm.replayCounter(COUNTER_VERIFY_FAILURES);
      const first = wasm.firstVerifyFailure();
      result.firstVerifyFailureEventIndex = first < 0 ? -1 : Math.max(0, first - this.prologue);
    }
    if (this.startState) result.startState = this.startState;
    return result;
  }
}

/**
 * Replays columns [from, to); `prologue` events of a materialized start state come first, and an
 * error names the trace event (or the materialization step) where the policy stopped.
 */
function run(wasm: CoreSimExports, from: number, to: number, checkEvery: number, policy: PolicyName, prologue: number): void {
  let failed: number;
  try {
    failed = wasm.replay(from, to, checkEvery);
  } catch (e) {
    if (e instanceof CoreSimAbort || e instanceof WebAssembly.RuntimeError) {
      const at = wasm.currentEvent();
      const detail = at < prologue ? `${(e as Error).message} (while materializing the start state, step ${at} of ${prologue})` : (e as Error).message;
      throw new PolicyInternalError(policy, detail, Math.max(0, at - prologue));
    }
    throw e;
  }
  if (failed >= 0) {
    const where = failed < prologue ? `step ${failed} of the ${prologue} that materialize the start state` : `trace event ${failed - prologue}`;
    throw new Error(`core-sim: isValid failed after ${where}: ${invariantName(policy, wasm.brokenInvariant())} broken`);
  }
}

/** Rebuilds the allocator state at the start of a trace recorded mid-run. */
function adoptInitialState(wasm: CoreSimExports, segments: SegmentState[]): void {
  if (segments.length === 0) return;
  for (const s of [...segments].sort((a, b) => a.address - b.address)) {
    wasm.adoptSegment(s.address, s.stream, s.pool === "small" ? 1 : 0, s.expandable ? 1 : 0);
    for (const b of s.blocks) wasm.adoptBlock(b.address, b.size, b.requestedSize, STATE_CODES[b.state], b.blockId);
  }
  wasm.adoptDone();
}

function readLayout(wasm: CoreSimExports): SegmentState[] {
  const segments = wasm.layoutWrite();
  const blocks = wasm.layoutBlockCount();
  const buf = wasm.memory.buffer;
  const segAddress = new Float64Array(buf, wasm.layoutSegAddress(), segments);
  const segSize = new Float64Array(buf, wasm.layoutSegSize(), segments);
  const segStream = new Int32Array(buf, wasm.layoutSegStream(), segments);
  const segSmall = new Uint8Array(buf, wasm.layoutSegSmall(), segments);
  const segExpandable = new Uint8Array(buf, wasm.layoutSegExpandable(), segments);
  const segFirst = new Int32Array(buf, wasm.layoutSegFirstBlock(), segments);
  const segCount = new Int32Array(buf, wasm.layoutSegBlockCount(), segments);
  const blkAddress = new Float64Array(buf, wasm.layoutBlkAddress(), blocks);
  const blkSize = new Float64Array(buf, wasm.layoutBlkSize(), blocks);
  const blkRequested = new Float64Array(buf, wasm.layoutBlkRequested(), blocks);
  const blkState = new Uint8Array(buf, wasm.layoutBlkState(), blocks);
  const blkTraceId = new Int32Array(buf, wasm.layoutBlkTraceId(), blocks);
  const out: SegmentState[] = [];
  for (let s = 0; s < segments; s++) {
    const blockStates = [];
    for (let b = segFirst[s]; b < segFirst[s] + segCount[s]; b++) {
      const state = BLOCK_STATES[blkState[b]];
      blockStates.push({
        address: blkAddress[b],
        size: blkSize[b],
        requestedSize: blkRequested[b],
        state,
        blockId: state === "inactive" ? -1 : blkTraceId[b],
      });
    }
    out.push({
      address: segAddress[s],
      totalSize: segSize[s],
      stream: segStream[s],
      pool: segSmall[s] ? "small" : "large",
      expandable: segExpandable[s] !== 0,
      blocks: blockStates,
    });
  }
  return out;
}

/** The results; `prologue` events of a materialized start state came before the trace's `n` (their indices are mapped to the trace's). */
function collect(wasm: CoreSimExports, trace: DeviceTrace, n: number, prologue: number, opts: ReplayOptions, layoutAtEvent?: SegmentState[]): DeviceReplayResult {
  if (wasm.statCount() !== STAT_NAMES.length) {
    throw new Error(`@lakebed/core-sim: the Wasm has ${wasm.statCount()} stats, the TypeScript table ${STAT_NAMES.length}; rebuild the package`);
  }
  const stats: Record<string, number> = {};
  STAT_NAMES.forEach((name, i) => (stats[name] = wasm.statValue(i)));

  const count = wasm.segmentLogCount();
  const buf = wasm.memory.buffer;
  const eventIndex = new Int32Array(buf, wasm.segmentLogEventIndex(), count);
  const action = new Uint8Array(buf, wasm.segmentLogAction(), count);
  const addr = new Float64Array(buf, wasm.segmentLogAddr(), count);
  const size = new Float64Array(buf, wasm.segmentLogSize(), count);
  const segmentEvents: SegmentEvent[] = [];
  for (let i = 0; i < count; i++) {
    segmentEvents.push({ eventIndex: eventIndex[i] < prologue ? -1 : eventIndex[i] - prologue, action: action[i], addr: addr[i], size: size[i] });
  }

  const driverCalls: Record<string, number> = {};
  DEVICE_CALL_NAMES.forEach((name, kind) => {
    const calls = wasm.deviceCalls(kind);
    if (calls > 0) driverCalls[name] = calls;
  });

  const policyCounters: Record<string, number> = {};
  policyEntry(opts.policy).counters.forEach((name, i) => (policyCounters[name] = wasm.policyCounter(i)));

  let timeline: Timeline | undefined;
  if ((opts.timelinePoints ?? 0) > 0) {
    const points = wasm.timelineCount();
    const b = wasm.memory.buffer;
    const at = new Float64Array(b, wasm.timelineEvent(), points);
    // windows that ended while the start state was materialized are before the trace
    let first = 0;
    while (first < points && at[first] < prologue) first++;
    timeline = {
      eventIndex: Array.from(at.subarray(first), (i) => i - prologue),
      allocatedBytes: Array.from(new Float64Array(b, wasm.timelineAllocated(), points).subarray(first)),
      reservedBytes: Array.from(new Float64Array(b, wasm.timelineReserved(), points).subarray(first)),
    };
  }

  return {
    device: trace.device,
    events: n,
    peakAllocatedBytes: stats["allocated_bytes.all.peak"],
    peakReservedBytes: stats["reserved_bytes.all.peak"],
    peakRequestedBytes: stats["requested_bytes.all.peak"],
    peakReservedEventIndex: wasm.peakReservedEventIndex() < 0 ? -1 : Math.max(0, wasm.peakReservedEventIndex() - prologue),
    deviceAllocs: stats["num_device_alloc"],
    deviceFrees: stats["num_device_free"],
    ooms: stats["num_ooms"],
    allocRetries: stats["num_alloc_retries"],
    failedAllocs: wasm.replayCounter(COUNTER_FAILED_ALLOCS),
    unexpectedOomSuccesses: wasm.replayCounter(COUNTER_UNEXPECTED_OOM_SUCCESSES),
    emptyCacheCalls: wasm.replayCounter(COUNTER_EMPTY_CACHE_CALLS),
    addressMismatches: wasm.replayCounter(COUNTER_ADDRESS_MISMATCHES),
    firstAddressMismatchEventIndex: wasm.firstAddressMismatch() < 0 ? -1 : wasm.firstAddressMismatch() - prologue,
    stats,
    segmentEvents,
    finalSegments: readLayout(wasm),
    driverCalls,
    allocatorSeconds: wasm.deviceMicros() / 1e6,
    policyCounters,
    ...(timeline ? { timeline } : {}),
    ...(layoutAtEvent ? { layoutAtEvent } : {}),
  };
}

