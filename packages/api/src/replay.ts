import type { Trace } from "@lakebed/traces";
import {
  confFromSettings,
  isPolicyName,
  parseAllocConf,
  policyEntry,
  replayDevice,
  PolicyInternalError,
  type AllocatorConf,
  type ClockCalibration,
  type ShrinkRequest,
  type DeviceReplayResult,
  type PolicyName,
} from "@lakebed/core-sim";

/** The policies `lakebed replay` can run: every policy of core-sim's registry. */
export { POLICY_NAMES as POLICIES } from "@lakebed/core-sim/policies";
export type { PolicyName };

export interface ReplayRequest {
  /** default: the policy the snapshot names (lakebed_torch's), else PyTorch's (resolvePolicy) */
  policy?: PolicyName;
  /**
   * PYTORCH_CUDA_ALLOC_CONF-style settings. As in PyTorch, a settings string is the whole
   * configuration: keys it does not name take PyTorch's defaults. Default: the recorded settings.
   */
  conf?: string;
  /** device capacity in bytes (PyTorch's per-process limit); default: unlimited */
  capacityBytes?: number;
  /** use the segment addresses the trace recorded where the replay asks for the same segments */
  traceAddresses?: boolean;
  /** the policy's whole invariant walk after every N events and at the end (0: never) */
  checkEvery?: number;
  /** the policy's local invariant check (what each event changed) after every event */
  checkLocal?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** record a timeline of about this many points (the highest value in each window of events) */
  timelinePoints?: number;
  /** capture the segment layout right after this event index */
  layoutAtEvent?: number;
  /** tiering: the plain step time the stall estimate's clock is scaled to (tiering/clock-calibration.ts) */
  clockCalibration?: ClockCalibration;
  /** tiering: serverless shrinks (idle gaps, given events, discardable blocks) */
  shrink?: ShrinkRequest;
}

/** What tiering did on one device (replay --json's `tiering`). Bytes, seconds. */
export interface TieringSummary {
  /** the device capacity it kept within (0: none, nothing moved) */
  capacityBytes: number;
  /** the most the device held (never above the capacity) and the most the host arena held */
  peakDeviceBytes: number;
  peakHostBytes: number;
  bytesOut: number;
  bytesIn: number;
  /** the copies' time by the cost model, both ways */
  transferSeconds: number;
  /** transfer time the computation between uses could not hide (NaN: the trace has no time) */
  stallSeconds: number;
  /** the trace's computation time, the recorder's cost taken out (use-clock.ts) */
  computeSeconds: number;
  /** operators whose blocks together did not fit the capacity: the trace does not run at it */
  unservedUses: number;
  /** uses whose block the simulated device did not hold mapped with access (0 unless unserved) */
  usesWithoutAccess: number;
  /** serverless shrinks run (--shrink-idle, --shrink-at), with what they did */
  shrink?: ShrinkSummary;
}

/** The serverless shrinks of one replay. Bytes, seconds (cost model). */
export interface ShrinkSummary {
  shrinks: number;
  /** device bytes the shrinks gave back, summed: the memory freed while idle */
  freedBytes: number;
  /** the lane time of the shrinks' moves (copy out, unmap, release), and of bringing their pages back */
  shrinkSeconds: number;
  refillSeconds: number;
  /** bytes dropped instead of copied (every block on the page discardable) */
  droppedBytes: number;
  /** the most the device held right after a shrink (pages the host arena had no room for) */
  residentAfterBytes: number;
}

/** One device's figures in `replay --json`. Sizes are bytes. */
export interface DeviceReplayDocument {
  device: number;
  events: number;
  peakAllocatedBytes: number;
  peakReservedBytes: number;
  peakRequestedBytes: number;
  deviceAllocs: number;
  deviceFrees: number;
  ooms: number;
  allocRetries: number;
  driverCalls: Record<string, number>;
  allocatorSeconds: number;
  /** the policy's own counters (vms: stitches, stitchReuses, ...; lakebed: chunkMoves, ...) */
  policyCounters: Record<string, number>;
  /** every statistic under torch.cuda.memory_stats() names */
  stats: Record<string, number>;
  /** with --find-min-capacity: the smallest capacity (to 2 MiB) that replays without an OOM */
  minCapacityBytes?: number;
  /** policies that read use events (tiering) */
  tiering?: TieringSummary;
}

export interface ReplayDocument {
  policy: PolicyName;
  /** why that policy (resolvePolicy): requested (--policy), recorded (the snapshot's lakebed_policy) or pytorch */
  policySource: PolicySource;
  conf: string;
  capacityBytes: number | null;
  events: number;
  /** wall-clock seconds the replay took on this machine */
  seconds: number;
  devices: DeviceReplayDocument[];
}

/**
 * Why a replay runs the policy it does: `requested` (the request's policy, --policy); `recorded`
 * (the one a snapshot written by lakebed_torch names, recordedPolicy); `pytorch` (a snapshot that
 * names none: PyTorch's allocator, caching, or expandable where the recorded settings turn
 * expandable_segments on).
 */
export type PolicySource = "requested" | "recorded" | "pytorch";

/** A policy's source in words, for the CLI's lines. */
export const POLICY_SOURCE_TEXT: Record<PolicySource, string> = {
  requested: "named by --policy",
  recorded: "recorded in the snapshot",
  // the settings may be --conf's, not the recorded ones: expandable_segments in them picks expandable
  pytorch: "PyTorch's allocator: the trace names no policy",
};

/** The policy a snapshot says it was recorded under (allocator_settings' `lakebed_policy`, written by liblakebed_torch), when it names one lakebed has. */
export function recordedPolicy(trace: Trace): PolicyName | undefined {
  const name = trace.allocatorSettings?.raw.lakebed_policy;
  return typeof name === "string" && isPolicyName(name) ? name : undefined;
}

/**
 * Resolves what a replay request means for this trace: which policy (request.policy, else the one
 * the snapshot names, else PyTorch's: policySource says which) and which settings (request.conf,
 * else the recorded ones: a lakebed_torch snapshot's hold the library's conf, lakebed_large_page_mb
 * and the like). Every replay (replay, verify, the live and differential replays) asks this.
 */
export function resolvePolicy(trace: Trace, request: ReplayRequest): { policy: PolicyName; policySource: PolicySource; conf: AllocatorConf; confText: string } {
  const recorded = trace.allocatorSettings;
  const confText = request.conf ?? recorded?.conf ?? "";
  const conf = request.conf !== undefined ? parseAllocConf(request.conf) : confFromSettings(recorded);
  const named = recordedPolicy(trace);
  const [policy, policySource]: [PolicyName, PolicySource] =
    request.policy !== undefined ? [request.policy, "requested"] : named !== undefined ? [named, "recorded"] : [conf.expandableSegments ? "expandable" : "caching", "pytorch"];
  return { policy, policySource, conf: { ...conf, expandableSegments: policyEntry(policy).expandableSegments }, confText };
}

/** A policy's internal error (a Wasm trap or assertion) as the one line that names the file, device and event. */
function replayReporting<T>(file: string, device: number, replay: () => T): T {
  try {
    return replay();
  } catch (error) {
    if (error instanceof PolicyInternalError) throw new Error(error.lineFor(file, device));
    throw error;
  }
}

export function replayTrace(trace: Trace, request: ReplayRequest = {}): { document: ReplayDocument; results: DeviceReplayResult[] } {
  const { policy, policySource, conf, confText } = resolvePolicy(trace, request);
  const total = trace.devices.reduce((n, d) => n + d.events.length, 0);
  const started = performance.now();
  let before = 0;
  const results = trace.devices.map((device) => {
    const result = replayReporting(trace.file, device.device, () => replayDevice(device, {
      policy,
      conf,
      capacityBytes: request.capacityBytes,
      traceAddresses: request.traceAddresses ?? true,
      checkEvery: request.checkEvery,
      checkLocal: request.checkLocal,
      timelinePoints: request.timelinePoints,
      layoutAtEvent: request.layoutAtEvent,
      clockCalibration: request.clockCalibration,
      shrink: request.shrink,
      onProgress: request.onProgress && ((done: number) => request.onProgress!(before + done, total)),
    }));
    before += device.events.length;
    return result;
  });
  const seconds = (performance.now() - started) / 1000;
  return {
    results,
    document: {
      policy,
      policySource,
      conf: confText,
      capacityBytes: request.capacityBytes ?? null,
      events: total,
      seconds,
      devices: results.map(toDocument),
    },
  };
}

export function toDocument(r: DeviceReplayResult): DeviceReplayDocument {
  return {
    device: r.device,
    events: r.events,
    peakAllocatedBytes: r.peakAllocatedBytes,
    peakReservedBytes: r.peakReservedBytes,
    peakRequestedBytes: r.peakRequestedBytes,
    deviceAllocs: r.deviceAllocs,
    deviceFrees: r.deviceFrees,
    ooms: r.ooms,
    allocRetries: r.allocRetries,
    driverCalls: r.driverCalls,
    allocatorSeconds: r.allocatorSeconds,
    policyCounters: r.policyCounters,
    stats: r.stats,
    ...(r.usesWithoutAccess !== undefined ? { tiering: tieringSummary(r) } : {}),
  };
}

export function tieringSummary(r: DeviceReplayResult): TieringSummary {
  const c = r.policyCounters;
  return {
    capacityBytes: c.capacityBytes,
    peakDeviceBytes: c.peakDeviceBytes,
    peakHostBytes: c.peakHostBytes,
    bytesOut: c.bytesOut,
    bytesIn: c.bytesIn,
    transferSeconds: c.transferSeconds,
    stallSeconds: c.stallSeconds,
    computeSeconds: r.computeSeconds ?? Number.NaN,
    unservedUses: c.unservedUses,
    usesWithoutAccess: r.usesWithoutAccess ?? 0,
    ...(c.shrinks > 0
      ? {
          shrink: {
            shrinks: c.shrinks,
            freedBytes: c.shrinkFreedBytes,
            shrinkSeconds: c.shrinkSeconds,
            refillSeconds: c.refillSeconds,
            droppedBytes: c.droppedBytes,
            residentAfterBytes: c.residentAfterShrinkBytes,
          },
        }
      : {}),
  };
}
