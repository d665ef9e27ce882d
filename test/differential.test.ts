import { describe, expect, it } from "vitest";
import { readTrace } from "@lakebed/traces";
import { differentialReplay } from "@lakebed/api";
import { ALLOCATOR_POLICIES } from "./support/allocator-policies.js";
import { haveSharedTraces, recordedTraces } from "./support/shared-traces.js";
import { hostAvailable, liveBackends, withBackends } from "./support/live-drivers.js";

/**
 * What was simulated is what runs: for every shared trace and every policy, the compiled policy
 * makes the identical sequence of device calls (kind and size, in order) on the simulator and live
 * on host memory (and on the GPU where there is one), and ends with identical statistics; the live
 * drivers hold nothing after teardown. lora_capped is replayed under the capacity it was recorded
 * with, so its OOM and retry paths run live too.
 *
 * Tiering is left out (see ALLOCATOR_POLICIES): these traces carry no use events.
 */
describe.skipIf(!haveSharedTraces || !hostAvailable)("differential: simulator vs live drivers", () => {
  for (const t of recordedTraces()) {
    it(withBackends(`${t.name}: identical device calls and statistics under every policy`), async () => {
      const trace = await readTrace(t.file);
      for (const policy of ALLOCATOR_POLICIES) {
        const result = await differentialReplay(trace, { backends: liveBackends, policy, capacityBytes: t.capacityBytes });
        for (const d of result.devices) {
          expect(d.simulated.calls.kinds.length, `${policy}: the simulator made no device call`).toBeGreaterThan(0);
          for (const live of d.live) {
            const where = `${t.name} ${policy} on ${live.backend}`;
            expect(live.divergence, where).toBeNull();
            expect(live.statDifferences, where).toEqual({});
            expect(live.failedAllocs, where).toBe(d.simulated.failedAllocs);
            expect(live.document.deviceCallCount, where).toBe(d.simulated.calls.kinds.length);
            expect(live.document.leaks, where).toEqual({ handles: 0, reservations: 0, mappings: 0, mallocs: 0 });
            expect(live.document.teardown.errors, where).toEqual([]);
          }
          // every backend this machine has (the GPU where there is one) really ran the trace
          expect(d.live.map((live) => live.backend), `${t.name} ${policy}`).toEqual(liveBackends);
        }
        expect(result.identical).toBe(true);
      }
    });
  }
});
