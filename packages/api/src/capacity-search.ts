import type { Trace } from "@lakebed/traces";
import { replayTrace, type ReplayRequest } from "./replay.js";

/** Capacities are searched to the driver's allocation granularity. */
export const CAPACITY_STEP_BYTES = 2 * 1024 * 1024;

export interface MinCapacity {
  device: number;
  /** the smallest capacity, a multiple of 2 MiB, at which the replay has no out-of-memory error */
  minCapacityBytes: number;
  /** replays the search ran */
  probes: number;
}

/**
 * Finds, per device, the smallest device capacity (to 2 MiB) at which the trace replays without an
 * out-of-memory error.
 *
 * Bounds: the peak of allocated bytes (rounded down) cannot suffice unless the policy wastes nothing,
 * and the peak reserved with unlimited memory (rounded up) always suffices, because a policy that
 * never meets the limit behaves as if there were none. Between them a binary search keeps the
 * invariant "lo fails, hi succeeds" and stops when they are one step apart, so the answer c has no
 * OOM at c and one at c - 2 MiB. An allocator is not guaranteed to be monotone in its capacity (a
 * smaller device can flush its cache earlier and end up better packed), so a smaller capacity that
 * also succeeds can exist below a failing one; the search reports the boundary it finds.
 */
export function findMinCapacity(
  trace: Trace,
  request: Omit<ReplayRequest, "capacityBytes">,
  /** replays done and an estimate of the replays the search needs, across devices */
  onProgress?: (probesDone: number, probesExpected: number) => void,
): MinCapacity[] {
  const unlimited = replayTrace(trace, { ...request, capacityBytes: undefined, onProgress: undefined }).document;
  // a bisection between the peaks, plus the replays that check its bounds
  const expected = unlimited.devices.reduce(
    (n, d) => n + 2 + Math.ceil(Math.log2(Math.max(2, (d.peakReservedBytes - d.peakAllocatedBytes) / CAPACITY_STEP_BYTES + 2))),
    0,
  );
  let done = 0;
  return trace.devices.map((device, i) => {
    const single: Trace = { ...trace, devices: [device] };
    const oomsAt = (capacityBytes: number) => {
      const ooms = replayTrace(single, { ...request, capacityBytes, onProgress: undefined }).document.devices[0].ooms;
      onProgress?.(++done, Math.max(expected, done + 1));
      return ooms;
    };
    const peak = unlimited.devices[i];
    let probes = 0;
    let hi = Math.max(CAPACITY_STEP_BYTES, Math.ceil(peak.peakReservedBytes / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES);
    let lo = Math.floor(peak.peakAllocatedBytes / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES - CAPACITY_STEP_BYTES;
    if (peak.ooms > 0) {
      // The trace itself ends in OOMs that no capacity removes (the request exceeded every device).
      return { device: device.device, minCapacityBytes: Number.NaN, probes };
    }
    // Make sure the bounds hold: hi must succeed, lo must fail (or be zero).
    while (oomsAt(hi) > 0) {
      probes++;
      hi += Math.max(CAPACITY_STEP_BYTES, Math.ceil(hi / 16 / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES);
    }
    probes++;
    if (lo <= 0) lo = 0;
    else if (oomsAt(lo) === 0) {
      probes++;
      // A policy that packs below peak allocated (it can share or evict): search down from lo.
      let step = CAPACITY_STEP_BYTES;
      hi = lo;
      lo = Math.max(0, hi - step);
      while (lo > 0 && oomsAt(lo) === 0) {
        probes++;
        hi = lo;
        step *= 2;
        lo = Math.max(0, hi - step);
      }
    } else probes++;
    while (hi - lo > CAPACITY_STEP_BYTES) {
      const mid = lo + Math.floor((hi - lo) / 2 / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES;
      probes++;
      if (oomsAt(mid) === 0) hi = mid;
      else lo = mid;
    }
    return { device: device.device, minCapacityBytes: hi, probes };
  });
}
