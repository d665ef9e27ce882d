import { describe, expect, it } from "vitest";
import { readTrace } from "@lakebed/traces";
import { CAPACITY_STEP_BYTES, findMinCapacity, replayTrace } from "@lakebed/api";
import { ALLOCATOR_POLICIES } from "./support/allocator-policies.js";
import { haveSharedTraces, recordedTraces } from "./support/shared-traces.js";

/**
 * The figure users want most, checked at its edge: for every policy on every recorded trace, a replay
 * at the minimum capacity the search reports runs without an out-of-memory error, and a replay one
 * step (2 MiB) below it has one. Tiering is left out (see ALLOCATOR_POLICIES): these traces carry no
 * use events.
 */
describe.skipIf(!haveSharedTraces)("minimum capacity is the edge between running and OOM", () => {
  for (const t of recordedTraces()) {
    it(t.name, async () => {
      const trace = await readTrace(t.file);
      for (const policy of ALLOCATOR_POLICIES) {
        const [found] = findMinCapacity(trace, { policy });
        const at = (capacityBytes: number) => replayTrace(trace, { policy, capacityBytes }).document.devices[0];
        const unlimited = replayTrace(trace, { policy }).document.devices[0];
        expect(found.minCapacityBytes % CAPACITY_STEP_BYTES, policy).toBe(0);
        expect(found.minCapacityBytes, policy).toBeGreaterThan(0);
        expect(found.minCapacityBytes, policy).toBeLessThanOrEqual(Math.ceil(unlimited.peakReservedBytes / CAPACITY_STEP_BYTES) * CAPACITY_STEP_BYTES);
        expect(at(found.minCapacityBytes).ooms, `${policy} at ${found.minCapacityBytes}`).toBe(0);
        expect(at(found.minCapacityBytes - CAPACITY_STEP_BYTES).ooms, `${policy} at ${found.minCapacityBytes - CAPACITY_STEP_BYTES}`).toBeGreaterThan(0);
      }
    });
  }
});
