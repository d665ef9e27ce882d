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
import { DeviceReplay, modelCapacityBytes, type DeviceReplayResult, type StartStateReport } from "@lakebed/core-sim";
import type { DeviceTrace, Trace } from "@lakebed/traces";
import { bindDriver, openDriver, type Driver, type DriverKind, type FailEvery, type LeakReport, type TeardownReport } from "@lakebed/native-cuda";
import { resolvePolicy, toDocument, type DeviceReplayDocument, type PolicyName, type ReplayDocument } from "../replay.js";
import { CallRecorder, type CallSequence } from "./call-recorder.js";
import { MemoryWatch } from "./memory-watch.js";
import { guardDriver } from "./teardown-guard.js";

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
  const { policy, conf, confText } = resolvePolicy(trace, request);
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
  let result: DeviceReplayResult | undefined;
  let heldAtEnd: HeldCounts | undefined;
  let watch: MemoryWatch | undefined;
  let failure: unknown;
  let teardown: TeardownReport | undefined;
  let leaks: HeldCounts | undefined;
  const description = driver.info().description;
  try {
    watch = request.watchMemory ? new MemoryWatch(driver) : undefined;
    const bound = bindDriver(driver, recorder, watch);
    const session = new DeviceReplay(device, {
      policy,
      conf,
      capacityBytes: request.capacityBytes,
      traceAddresses: false,
      checkEvery: request.checkEvery,
      checkLocal: request.checkLocal,
      verifyData: request.verifyData,
      deviceImports: bound.imports,
      onProgress: (done) => onProgress(done),
    });
    bound.setMemory(session.wasm.memory);
    const timeNative = recorder.timed && request.timeNative !== false;
    if (timeNative) driver.timeCalls(true);
    let chunkEvents = FIRST_CHUNK_EVENTS;
    while (!session.done) {
      const started = performance.now();
      session.step(chunkEvents);
      chunkEvents = nextChunkEvents(chunkEvents, performance.now() - started);
      await yieldToEventLoop();
    }
    if (timeNative) recorder.attachNativeTimes(driver.takeCallTimes());
    result = session.result();
    heldAtEnd = countHeld(driver.leakReport());
    const broken = driver.isValid();
    if (broken !== null) throw new Error(`the ${request.backend} driver's tables are inconsistent after the replay: ${broken}`);
  } catch (e) {
    failure = e;
  } finally {
    teardown = driver.teardown();
    leaks = countHeld(driver.leakReport());
    // a signal that came after the last chunk is still handled (exit 128 + signal) before the guard goes
    await yieldToEventLoop();
    release();
  }
  if (failure !== undefined || !result || !heldAtEnd) {
    const why = failure instanceof Error ? failure.message : String(failure);
    const left = held(leaks);
    const after = left === 0 ? "everything it held was released" : `${left} allocations are still held after teardown`;
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
  return { result, document, calls: recorder.sequence(), recorder, description };
}
