// The differential check: one trace, one policy, replayed on the simulator and live on each given
// backend. The policy must make the identical sequence of device calls (kind and bytes, in order)
// on every backend and end with identical statistics, or what was simulated is not what runs.
// Both sides run with traceAddresses off (the live device cannot take addresses from the trace, and
// the simulator must see the same addresses the live policy sees: core-sim's imported.ts), and a
// trace recorded mid-run has its start state materialized on both (a live device cannot adopt it).
import { replayDevice, type ClockCalibration, type DeviceReplayResult, type ShrinkRequest } from "@lakebed/core-sim";
import type { Trace } from "@lakebed/traces";
import { resolvePolicy, type PolicyName } from "../replay.js";
import type { CallSequence } from "./call-recorder.js";
import { firstDivergence, type CallDivergence } from "./call-sequence.js";
import { replayLive, type LiveBackend, type LiveDeviceDocument } from "./live-replay.js";

export interface DifferentialRequest {
  backends: LiveBackend[];
  policy?: PolicyName;
  conf?: string;
  capacityBytes?: number;
  verifyData?: boolean;
  /** sample cuMemGetInfo after each call that takes memory (the live documents' `memory`) */
  watchMemory?: boolean;
  /** tiering: its clock calibration and serverless shrinks, the same on both sides */
  clockCalibration?: ClockCalibration;
  shrink?: ShrinkRequest;
}

export interface DifferentialDevice {
  device: number;
  /** the simulator's calls */
  simulated: { calls: CallSequence; stats: Record<string, number>; failedAllocs: number; peakReservedBytes: number };
  live: Array<{
    backend: LiveBackend;
    calls: CallSequence;
    stats: Record<string, number>;
    failedAllocs: number;
    document: LiveDeviceDocument;
    /** null when the calls are identical to the simulator's */
    divergence: CallDivergence | null;
    /** statistics whose values differ from the simulator's: name -> [simulated, live] */
    statDifferences: Record<string, [number, number]>;
  }>;
}

export interface DifferentialResult {
  policy: PolicyName;
  /** true when every backend matched the simulator on every device */
  identical: boolean;
  devices: DifferentialDevice[];
}

function simulate(trace: Trace, request: DifferentialRequest): { policy: PolicyName; results: DeviceReplayResult[] } {
  const { policy, conf } = resolvePolicy(trace, request);
  const results = trace.devices.map((device) =>
    replayDevice(device, {
      policy,
      conf,
      capacityBytes: request.capacityBytes,
      traceAddresses: false,
      callLog: true,
      startState: "materialize",
      clockCalibration: request.clockCalibration,
      shrink: request.shrink,
    }),
  );
  return { policy, results };
}

function statDifferences(a: Record<string, number>, b: Record<string, number>): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) if (a[key] !== b[key]) out[key] = [a[key], b[key]];
  return out;
}

export async function differentialReplay(trace: Trace, request: DifferentialRequest): Promise<DifferentialResult> {
  const { policy, results } = simulate(trace, request);
  const devices: DifferentialDevice[] = results.map((r) => ({
    device: r.device,
    simulated: { calls: r.callLog!, stats: r.stats, failedAllocs: r.failedAllocs, peakReservedBytes: r.peakReservedBytes },
    live: [],
  }));
  for (const backend of request.backends) {
    const { runs } = await replayLive(trace, { backend, policy, conf: request.conf, capacityBytes: request.capacityBytes, verifyData: request.verifyData, watchMemory: request.watchMemory, clockCalibration: request.clockCalibration, shrink: request.shrink });
    runs.forEach((run, i) => {
      const sim = devices[i].simulated;
      devices[i].live.push({
        backend,
        calls: run.calls,
        stats: run.result.stats,
        failedAllocs: run.result.failedAllocs,
        document: run.document,
        divergence: firstDivergence(sim.calls, run.calls),
        statDifferences: statDifferences(sim.stats, run.result.stats),
      });
    });
  }
  const identical = devices.every((d) =>
    d.live.every((l) => l.divergence === null && Object.keys(l.statDifferences).length === 0 && l.failedAllocs === d.simulated.failedAllocs),
  );
  return { policy, identical, devices };
}
