import type { Trace } from "@lakebed/traces";
import type { ClockCalibration, TieringVictim } from "@lakebed/core-sim";
import { CAPACITY_STEP_BYTES, findMinCapacity } from "../capacity-search.js";
import { replayTrace, tieringSummary, type TieringSummary } from "../replay.js";

export const VICTIMS: readonly TieringVictim[] = ["online", "belady"];

/** The estimated stall, as a share of the computation time, under which a capacity counts as cheap. */
export const STALL_SHARE_TARGET = 0.05;

export interface TieringPoint {
  capacityBytes: number;
  /** per victim choice: what tiering did at this capacity; null where the trace does not run */
  online: TieringSummary | null;
  belady: TieringSummary | null;
}

/** One device's stall-capacity curve (`lakebed tiering`). Bytes, seconds. */
export interface TieringSweep {
  device: number;
  /** the trace's computation time (the stall estimate's clock, the recorder's cost taken out) */
  computeSeconds: number;
  /** the most bytes the trace has allocated at once */
  peakAllocatedBytes: number;
  /** the smallest capacity the lakebed policy needs without tiering (replay --find-min-capacity) */
  lakebedMinCapacityBytes: number;
  /** per victim choice: the smallest capacity (to 2 MiB) at which the trace runs at all */
  minCapacityBytes: Record<TieringVictim, number>;
  /** per victim choice: the smallest capacity found whose stall stays under STALL_SHARE_TARGET of computeSeconds */
  stallTargetCapacityBytes: Record<TieringVictim, number>;
  points: TieringPoint[];
}

export interface SweepRequest {
  conf?: string;
  /** capacities drawn between the smallest that runs and the peak (default 12) */
  points?: number;
  clockCalibration?: ClockCalibration;
  /** replays done, and the replays the sweep expects */
  onProgress?: (done: number, expected: number) => void;
}

/** Tiering at one capacity under one victim choice; null when the trace does not run there. */
function tieringAt(single: Trace, victim: TieringVictim, capacityBytes: number, request: SweepRequest): TieringSummary | null {
  const conf = [request.conf, `tiering_victim:${victim}`].filter(Boolean).join(",");
  const r = replayTrace(single, { policy: "tiering", conf, capacityBytes, clockCalibration: request.clockCalibration }).results[0];
  const s = tieringSummary(r);
  return r.failedAllocs === 0 && s.unservedUses === 0 ? s : null;
}

/**
 * Per device: the smallest capacity at which tiering runs the trace at all, under each victim
 * choice (a bisection to 2 MiB between nothing and the peak the policy reserves unlimited); the
 * stall at `points` capacities from there to that peak; the smallest capacity whose stall stays
 * under 5% of the computation (bisected between the points around it); and, for scale, the lakebed
 * policy's own minimum capacity without tiering.
 */
export function tieringSweep(trace: Trace, request: SweepRequest = {}): TieringSweep[] {
  const pointCount = Math.max(2, request.points ?? 12);
  let done = 0;
  const expected = trace.devices.length * (2 * 14 + 2 * pointCount + 2 * 8 + 14);
  const tick = () => request.onProgress?.(++done, Math.max(expected, done + 1));
  return trace.devices.map((device) => {
    const single: Trace = { ...trace, devices: [device] };
    const unlimited = replayTrace(single, { policy: "tiering", conf: request.conf, clockCalibration: request.clockCalibration }).results[0];
    tick();
    const top = Math.max(CAPACITY_STEP_BYTES, Math.ceil(unlimited.policyCounters.peakDeviceBytes / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES);
    const at = (victim: TieringVictim, capacity: number) => {
      const s = tieringAt(single, victim, capacity, request);
      tick();
      return s;
    };
    const minimum = {} as Record<TieringVictim, number>;
    for (const victim of VICTIMS) {
      // lo does not run (or is nothing), hi runs
      let lo = 0;
      let hi = top;
      while (hi - lo > CAPACITY_STEP_BYTES) {
        const mid = Math.floor((lo + hi) / 2 / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES;
        if (at(victim, mid) !== null) hi = mid;
        else lo = mid;
      }
      minimum[victim] = hi;
    }
    const from = Math.min(minimum.online, minimum.belady);
    const capacities: number[] = [];
    for (let k = 0; k < pointCount; k++) {
      capacities.push(Math.round((from + ((top - from) * k) / (pointCount - 1)) / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES);
    }
    const points: TieringPoint[] = [...new Set(capacities)].map((capacityBytes) => ({
      capacityBytes,
      online: capacityBytes >= minimum.online ? at("online", capacityBytes) : null,
      belady: capacityBytes >= minimum.belady ? at("belady", capacityBytes) : null,
    }));
    const computeSeconds = unlimited.computeSeconds ?? Number.NaN;
    const cheap = (s: TieringSummary | null) => s !== null && s.stallSeconds <= STALL_SHARE_TARGET * computeSeconds;
    const target = {} as Record<TieringVictim, number>;
    for (const victim of VICTIMS) {
      // the first point under the target, then a bisection towards the point before it
      const k = points.findIndex((p) => cheap(p[victim]));
      if (k < 0 || Number.isNaN(computeSeconds)) {
        target[victim] = Number.NaN;
        continue;
      }
      let hi = points[k].capacityBytes;
      let lo = k > 0 ? points[k - 1].capacityBytes : Math.max(0, minimum[victim] - CAPACITY_STEP_BYTES);
      for (let step = 0; step < 8 && hi - lo > CAPACITY_STEP_BYTES; step++) {
        const mid = Math.floor((lo + hi) / 2 / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES;
        if (mid >= minimum[victim] && cheap(at(victim, mid))) hi = mid;
        else lo = mid;
      }
      target[victim] = hi;
    }
    const lakebed = findMinCapacity(single, { policy: "lakebed", conf: request.conf }, () => tick())[0];
    return {
      device: device.device,
      computeSeconds,
      peakAllocatedBytes: unlimited.peakAllocatedBytes,
      lakebedMinCapacityBytes: lakebed.minCapacityBytes,
      minCapacityBytes: minimum,
      stallTargetCapacityBytes: target,
      points,
    };
  });
}
