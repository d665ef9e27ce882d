// A live replay: the trace's policy, the same compiled Wasm the simulator runs, drives real memory
// through a native-cuda Driver ('host': memfd + mmap; 'cuda': the CUDA virtual-memory API). Every
// device call the policy makes is really made (native-cuda's wasm-imports.ts), recorded in order
// (call-recorder.ts), and, with verifyData, every allocation is filled with the check pattern and
// checked before it is freed (core-sim's replay loop calls the driver's fill/check).
//
// Each device of the trace gets a fresh driver, torn down after its replay whatever happened (a
// thrown driver error, an interrupted run: teardown-guard.ts), and the document says what was
// still held after teardown (`leaks`, all zero unless the driver could not release something).
//
// A trace recorded mid-run (all public snapshots, and any recorded after the model was built) starts
// with memory the driver never handed out: the policy materializes that start state through the
// driver before the trace's first event (core-sim's start-state-prologue.ts), and the document's
// `startState` says what it held then and that the statistics count those allocations.
//
// The policy runs with traceAddresses off: it sees the simulator's address model, and the imported
// device translates to the driver's addresses (core-sim's assembly/device/imported.ts says why), so
// a live replay takes the decisions of a simulated replay with traceAddresses off, call for call.
import { DeviceReplay, modelCapacityBytes, shrinkPositions, type ClockCalibration, type DeviceReplayResult, type ShrinkRequest, type StartStateReport } from "@lakebed/core-sim";
import type { DeviceTrace, Trace } from "@lakebed/traces";
import { bindDriver, CALL_KINDS, openDriver, type Driver, type DriverKind, type FailEvery, type LeakReport, type NativeCallTimes, type TeardownReport } from "@lakebed/native-cuda";
import { resolvePolicy, toDocument, type DeviceReplayDocument, type PolicyName, type ReplayDocument } from "../replay.js";
import { CallRecorder, type CallSequence } from "./call-recorder.js";
import { MemoryWatch } from "./memory-watch.js";
import { guardDriver } from "./teardown-guard.js";
import { HostTierTap, type CopyFigures, type LiveShrinkReport, type PolicyShrinkReport, type RoundTripFigures } from "./host-tier.js";

export type LiveBackend = DriverKind;

export interface LiveReplayRequest {
  backend: LiveBackend;
  policy?: PolicyName;
  conf?: string;
  capacityBytes?: number;
  /** fill every allocation with the check pattern and check it before its free */
  verifyData?: boolean;
  /** the policy's whole invariant walk after every N events and at the end (0: never) */
  checkEvery?: number;
  /** the policy's local invariant check (what each event changed) after every event */
  checkLocal?: boolean;
  /** native-cuda fault injection: every Nth call of a kind fails as the driver would */
  failEvery?: FailEvery;
  /** keep each driver call's latency from the policy's import, and its operands (the benchmark) */
  timeCalls?: boolean;
  /** with timeCalls: also time each call inside the native layer (DriverCore's whole operation,
   * and the driver function alone; the recorder's coreMicros/driverMicros). Default: on. Its
   * clock reads add to the time seen from the import. */
  timeNative?: boolean;
  /** sample cuMemGetInfo after each call that takes memory (the benchmark's real peak) */
  watchMemory?: boolean;
  /** CUDA device ordinal (cuda only) */
  device?: number;
  onProgress?: (done: number, total: number) => void;
  /** tiering: the plain step time its stall estimate's clock is scaled to (as the simulator's replay) */
  clockCalibration?: ClockCalibration;
  /** tiering: the policy's serverless shrinks (idle gaps, given events, discardable blocks) */
  shrink?: ShrinkRequest;
  /**
   * The serverless shrink of the whole live process, whatever its policy: right before this trace
   * event (1 or more), every chunk the driver holds is copied to a pinned arena, unmapped and
   * released, then created, mapped at the same addresses and copied back (host-tier.ts); the
   * replay then goes on. Not with timeCalls (its calls are no policy's).
   */
  liveShrinkAt?: number;
}

/** The host tier of one live device: what the driver's copies did, measured (host-tier.ts). */
export interface HostTierDocument {
  /** the pinned arena the policy reserved (hostReserve), bytes; 0: none */
  arenaBytes: number;
  /** the arena the driver still held when the replay ended (the policy never gives it back) */
  arenaHeldAtEnd: number;
  /** the arena held after teardown: a leak unless 0 */
  arenaLeftAfterTeardown: number;
  /** the policy's copies each way: calls, bytes, wall seconds around the addon call, the driver
   * function's own seconds (cuMemcpyDtoH/HtoD; host: memcpy), and GiB/s by each */
  copyOut: CopyFigures & { driverSeconds: number; gibPerSecond: number; driverGibPerSecond: number; bySize: CopySizeFigures[] };
  copyIn: CopyFigures & { driverSeconds: number; gibPerSecond: number; driverGibPerSecond: number; bySize: CopySizeFigures[] };
  /** with verifyData: every byte of every copy back compared with what was copied out */
  roundTrip?: RoundTripFigures;
  /** liveShrinkAt: the whole process shrunk and refilled, live */
  liveShrinks?: LiveShrinkReport[];
  /** the policy's own serverless shrinks (tiering's shrink request), measured live */
  policyShrinks?: PolicyShrinkReport[];
}

/**
 * The policy's copies of one size, one direction (it copies runs of adjacent pages in one call, so
 * sizes are multiples of the page): how many, and the driver function's own time of each, the
 * figure bench/host_tier_bandwidth times its raw copies by (a clock read on each side of the call).
 */
export interface CopySizeFigures {
  bytes: number;
  calls: number;
  /** summed, and the median call's */
  driverSeconds: number;
  medianDriverMicros: number;
}

/** What a driver still held, by table. */
export interface HeldCounts {
  handles: number;
  reservations: number;
  mappings: number;
  mallocs: number;
}

export interface LiveDeviceDocument extends DeviceReplayDocument {
  /** alloc events the policy could not serve (out of memory) */
  failedAllocs: number;
  /** device calls really made, per kind */
  deviceCalls: Record<string, number>;
  /** all device calls made, in total */
  deviceCallCount: number;
  /** with --verify-data: allocations checked before their free (or at the end, still live) */
  verifiedAllocations?: number;
  /** of those, the ones whose pattern had changed (0 = no aliasing seen) */
  verifyFailures?: number;
  /** the event where the first changed pattern was found, -1: none */
  firstVerifyFailureEventIndex?: number;
  /** what the policy still held on the device when the trace ended (its cache) */
  heldAtEnd: HeldCounts;
  /** what teardown released */
  teardown: TeardownReport;
  /** what was still held after teardown: all zero, or the native backend leaked */
  leaks: HeldCounts;
  /** with watchMemory: cuMemGetInfo free bytes before the replay, and the highest growth since */
  memory?: { baselineFreeBytes: number; peakInUseBytes: number; samples: number };
  /** driver calls native-cuda counted, per kind, including pattern fills and checks */
  driverCounters: Record<string, number>;
  /**
   * A trace recorded mid-run: its start state, materialized through the driver before the first
   * event. The figures above (statistics, peaks, device calls, verified allocations) count from an
   * empty device, so they include the materialization's allocations.
   */
  startState?: StartStateReport;
  /** the host tier's figures, where the policy used it or the process was shrunk live */
  hostTier?: HostTierDocument;
}

export interface LiveReplayDocument extends Omit<ReplayDocument, "devices"> {
  backend: LiveBackend;
  /** the driver's own description: the GPU and driver version, or host memory */
  driver: string;
  verifyData: boolean;
  devices: LiveDeviceDocument[];
}

export interface LiveDeviceRun {
  result: DeviceReplayResult;
  document: LiveDeviceDocument;
  /** every device call made, in order */
  calls: CallSequence;
  recorder: CallRecorder;
}

/** A live replay that failed: the driver error, and what teardown left (leaks should be zero). */
export class LiveReplayError extends Error {
  constructor(
    message: string,
    override readonly cause: unknown,
    readonly device: number,
    readonly leaks: HeldCounts,
    readonly teardown: TeardownReport,
    readonly calls: CallSequence,
  ) {
    super(message);
    this.name = "LiveReplayError";
  }
}

export function countHeld(report: LeakReport): HeldCounts {
  return {
    handles: report.handles.length,
    reservations: report.reservations.length,
    mappings: report.mappings.length,
    mallocs: report.mallocs.length,
  };
}

const held = (c: HeldCounts) => c.handles + c.reservations + c.mappings + c.mallocs;

/**
 * Lets the event loop run, so that a SIGINT or SIGTERM that arrived during the last chunk reaches
 * teardown-guard.ts's handler. A timer, not setImmediate: a signal that arrives while a chunk runs
 * is not delivered in the turn of an immediate queued after it (a Ctrl-C waited for many chunks,
 * 20 s and more under fault injection, and one in the last chunk was lost), but is by the next
 * timer turn.
 */
const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * A live replay runs in chunks of about CHUNK_TARGET_MS between turns of the event loop, so that
 * Ctrl-C is handled within about that long: the cost of an event varies a thousandfold (under fault
 * injection vms took about 1 ms an event, and a fixed chunk of 65,536 events a minute), so the chunk
 * is sized by the time the last one took, halved or doubled. Each turn costs about 1 ms (a timer).
 */
const CHUNK_TARGET_MS = 50;
const FIRST_CHUNK_EVENTS = 256;
const MAX_CHUNK_EVENTS = 1 << 16;

function nextChunkEvents(events: number, ms: number): number {
  if (ms < CHUNK_TARGET_MS / 2) return Math.min(events * 2, MAX_CHUNK_EVENTS);
  if (ms > CHUNK_TARGET_MS * 2) return Math.max(1, events >> 1);
  return events;
}

export async function replayLive(trace: Trace, request: LiveReplayRequest): Promise<{ document: LiveReplayDocument; runs: LiveDeviceRun[] }> {
  const { policy, policySource, conf, confText } = resolvePolicy(trace, request);
  const total = trace.devices.reduce((n, d) => n + d.events.length, 0);
  const started = performance.now();
  const runs: LiveDeviceRun[] = [];
  let description = "";
  let before = 0;
  for (const device of trace.devices) {
    const run = await replayDeviceLive(device, request, policy, conf, (done) => request.onProgress?.(before + done, total));
    description = run.description;
    runs.push(run);
    before += device.events.length;
  }
  return {
    runs,
    document: {
      backend: request.backend,
      driver: description,
      verifyData: request.verifyData === true,
      policy,
      policySource,
      conf: confText,
      capacityBytes: request.capacityBytes ?? null,
      events: total,
      seconds: (performance.now() - started) / 1000,
      devices: runs.map((r) => r.document),
    },
  };
}

async function replayDeviceLive(
  device: DeviceTrace,
  request: LiveReplayRequest,
  policy: PolicyName,
  conf: ReturnType<typeof resolvePolicy>["conf"],
  onProgress: (done: number) => void,
): Promise<LiveDeviceRun & { description: string }> {
  // the driver holds what the simulated device holds, so both refuse the same memCreate and malloc
  const capacity = modelCapacityBytes(device, { conf, capacityBytes: request.capacityBytes });
  const driver: Driver = openDriver(request.backend, { failEvery: request.failEvery, device: request.device, capacity });
  const release = guardDriver(driver);
  const recorder = new CallRecorder(request.timeCalls === true);
  if (request.liveShrinkAt !== undefined && recorder.timed) throw new Error("a live shrink cannot be timed call by call (its calls are no policy's)");
  const tap = new HostTierTap(driver, request.verifyData === true);
  const timeNative = recorder.timed && request.timeNative !== false;
  // the driver's own seconds of each of the policy's copies, in call order
  const nativeCopies: { out: number[]; in: number[] } = { out: [], in: [] };
  let arenaHeldAtEnd = 0;
  let arenaLeft = 0;
  let result: DeviceReplayResult | undefined;
  let heldAtEnd: HeldCounts | undefined;
  let watch: MemoryWatch | undefined;
  let failure: unknown;
  let teardown: TeardownReport | undefined;
  let leaks: HeldCounts | undefined;
  const description = driver.info().description;
  try {
    watch = request.watchMemory ? new MemoryWatch(driver) : undefined;
    // the policy's calls reach the driver through the host tier's tap (bindDriver reads only `direct`)
    const bound = bindDriver(Object.create(driver, { direct: { value: tap.direct } }) as Driver, recorder, watch);
    const session = new DeviceReplay(device, {
      policy,
      conf,
      capacityBytes: request.capacityBytes,
      traceAddresses: false,
      checkEvery: request.checkEvery,
      checkLocal: request.checkLocal,
      verifyData: request.verifyData,
      deviceImports: bound.imports,
      clockCalibration: request.clockCalibration,
      shrink: request.shrink,
      onProgress: (done) => onProgress(done),
    });
    bound.setMemory(session.wasm.memory);
    // the driver's own time of each copy: from the recorder's native times, or taken here
    const copyTimes = !timeNative;
    if (timeNative || copyTimes) driver.timeCalls(true);
    const drainCopyTimes = () => {
      if (copyTimes) addCopyTimes(driver.takeCallTimes(), nativeCopies);
    };
    const shrinkAt = request.liveShrinkAt;
    if (shrinkAt !== undefined && !(Number.isInteger(shrinkAt) && shrinkAt >= 1 && shrinkAt <= device.events.length)) {
      throw new Error(`a live shrink runs before a trace event from 1 to ${device.events.length}, not ${shrinkAt}`);
    }
    let shrunk = false;
    // the policy's own shrinks (tiering): the replay pauses right before each, and the tap watches its calls
    const access = device.access;
    const policyShrinkAt = request.shrink && access && access.uses.length > 0 ? shrinkPositions(device, access, request.shrink, request.clockCalibration).filter((p) => p > 0) : [];
    let nextPolicyShrink = 0;
    let chunkEvents = FIRST_CHUNK_EVENTS;
    while (!session.done) {
      const started = performance.now();
      while (nextPolicyShrink < policyShrinkAt.length && policyShrinkAt[nextPolicyShrink] === session.position) tap.armShrink(policyShrinkAt[nextPolicyShrink++]);
      const toShrink = Math.min(
        shrinkAt !== undefined && !shrunk ? shrinkAt - session.position : Infinity,
        nextPolicyShrink < policyShrinkAt.length ? policyShrinkAt[nextPolicyShrink] - session.position : Infinity,
      );
      session.step(Math.min(chunkEvents, Math.max(1, toShrink)));
      chunkEvents = nextChunkEvents(chunkEvents, performance.now() - started);
      if (shrinkAt !== undefined && !shrunk && session.position === shrinkAt) {
        drainCopyTimes(); // the shrink's own copies are timed by the tap, not counted as the policy's
        tap.shrinkAndRefill(shrinkAt);
        if (copyTimes) driver.takeCallTimes();
        shrunk = true;
      }
      await yieldToEventLoop();
    }
    if (timeNative) recorder.attachNativeTimes(driver.takeCallTimes());
    else drainCopyTimes();
    arenaHeldAtEnd = driver.counters().hostArenaBytes;
    result = session.result();
    heldAtEnd = countHeld(driver.leakReport());
    const broken = driver.isValid();
    if (broken !== null) throw new Error(`the ${request.backend} driver's tables are inconsistent after the replay: ${broken}`);
  } catch (e) {
    failure = e;
  } finally {
    teardown = driver.teardown();
    const left = driver.leakReport();
    leaks = countHeld(left);
    arenaLeft = left.hostArenaBytes;
    // a signal that came after the last chunk is still handled (exit 128 + signal) before the guard goes
    await yieldToEventLoop();
    release();
  }
  if (failure !== undefined || !result || !heldAtEnd) {
    const why = failure instanceof Error ? failure.message : String(failure);
    const left = held(leaks);
    const after =
      left === 0 && arenaLeft === 0
        ? "everything it held was released"
        : `${left} allocations${arenaLeft > 0 ? ` and a host arena of ${arenaLeft} bytes` : ""} are still held after teardown`;
    throw new LiveReplayError(`live replay on ${request.backend}: ${why} (${after})`, failure, device.device, leaks, teardown, recorder.sequence());
  }
  const counters = driver.counters();
  const driverCounters: Record<string, number> = {};
  for (const [kind, n] of Object.entries(counters.calls)) if (n > 0) driverCounters[kind] = n;
  const document: LiveDeviceDocument = {
    ...toDocument(result),
    failedAllocs: result.failedAllocs,
    driverCalls: recorder.perKind(),
    allocatorSeconds: 0,
    deviceCalls: recorder.perKind(),
    deviceCallCount: recorder.count,
    ...(request.verifyData
      ? {
          verifiedAllocations: result.verifiedAllocations ?? 0,
          verifyFailures: result.verifyFailures ?? 0,
          firstVerifyFailureEventIndex: result.firstVerifyFailureEventIndex ?? -1,
        }
      : {}),
    heldAtEnd,
    teardown,
    leaks,
    ...(watch ? { memory: { baselineFreeBytes: watch.baselineFreeBytes, peakInUseBytes: watch.peakInUseBytes, samples: watch.samples } } : {}),
    driverCounters,
    ...(result.startState ? { startState: result.startState } : {}),
  };
  if (timeNative) {
    const kinds = recorder.sequence().kinds;
    const micros = recorder.driverMicros();
    for (let i = 0; i < kinds.length; i++) {
      if (micros[i] < 0) continue;
      if (kinds[i] === KIND_COPY_OUT) nativeCopies.out.push(micros[i] / 1e6);
      else if (kinds[i] === KIND_COPY_IN) nativeCopies.in.push(micros[i] / 1e6);
    }
  }
  if (tap.arenaBytes > 0 || tap.copyOut.calls > 0 || tap.shrinks.length > 0 || tap.policyShrinks.length > 0) {
    document.hostTier = {
      arenaBytes: tap.arenaBytes,
      arenaHeldAtEnd,
      arenaLeftAfterTeardown: arenaLeft,
      copyOut: copyDocument(tap.copyOut, tap.copySizes.out, nativeCopies.out),
      copyIn: copyDocument(tap.copyIn, tap.copySizes.in, nativeCopies.in),
      ...(request.verifyData ? { roundTrip: { ...tap.roundTrip } } : {}),
      ...(tap.shrinks.length > 0 ? { liveShrinks: tap.shrinks } : {}),
      ...(tap.policyShrinks.length > 0 ? { policyShrinks: tap.policyShrinks } : {}),
    };
  }
  return { result, document, calls: recorder.sequence(), recorder, description };
}

const KIND_COPY_OUT = CALL_KINDS.indexOf("copyOut");
const KIND_COPY_IN = CALL_KINDS.indexOf("copyIn");

/** Appends the driver function's own seconds of each copyOut and copyIn among `times` to `into`. */
function addCopyTimes(times: NativeCallTimes, into: { out: number[]; in: number[] }): void {
  for (let i = 0; i < times.kinds.length; i++) {
    const ns = times.driverNs[i];
    if (ns < 0) continue;
    if (times.kinds[i] === KIND_COPY_OUT) into.out.push(ns / 1e9);
    else if (times.kinds[i] === KIND_COPY_IN) into.in.push(ns / 1e9);
  }
}

/**
 * One direction's copies: the tap's figures, the driver's own seconds, and both by size. `sizes`
 * and `driverSeconds` are the same calls in the same order (the tap saw every copy the driver
 * timed); when they differ in number (no timing) the sizes stand alone, with no times.
 */
function copyDocument(figures: CopyFigures, sizes: number[], driverSeconds: number[]): HostTierDocument["copyOut"] {
  const rate = (bytes: number, seconds: number) => (seconds > 0 ? bytes / 1024 ** 3 / seconds : 0);
  const timed = driverSeconds.length === sizes.length;
  const seconds = timed ? driverSeconds.reduce((a, b) => a + b, 0) : 0;
  const groups = new Map<number, number[]>();
  sizes.forEach((bytes, i) => {
    const g = groups.get(bytes) ?? [];
    g.push(timed ? driverSeconds[i] : NaN);
    groups.set(bytes, g);
  });
  const bySize = [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([bytes, times]): CopySizeFigures => {
      const sorted = [...times].sort((a, b) => a - b);
      const n = sorted.length;
      const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
      return { bytes, calls: n, driverSeconds: timed ? times.reduce((a, b) => a + b, 0) : 0, medianDriverMicros: timed ? median * 1e6 : 0 };
    });
  return { ...figures, driverSeconds: seconds, gibPerSecond: rate(figures.bytes, figures.seconds), driverGibPerSecond: rate(figures.bytes, seconds), bySize };
}
