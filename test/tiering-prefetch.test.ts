import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { clockCalibrationBeside, loadTrace, replayTrace } from "@lakebed/api";
import { repoRoot } from "./support/shared-traces.js";

/**
 * tiering's prefetch batching (tiering.ts: a needed run's neighbours, adjacent on the device and in
 * the host arena and due within the window, come back in the same copy) on gpt2_ckpt, whose
 * operators each need a few pages of runs that left together: at 0.75 x lakebed's minimum (the
 * capacity of scripts/tiering-live/run.sh) copies in grow from 4.7 pages each without it to more
 * than 6, every use is still served with its pages on the device, and the local invariants
 * (INV-TIER-9 among them: a use evicts no more than it missed plus what it prefetched) hold after
 * every event.
 */
const file = join(repoRoot, "test/fixtures/access/gpt2_ckpt.def.pickle.gz");
const capacityBytes = 2661285888;

describe("tiering's prefetch batching", () => {
  for (const victim of ["online", "belady"]) {
    it(`brings a needed run's due neighbours back in its copy on gpt2_ckpt (${victim})`, async () => {
      const trace = await loadTrace(file, false, { withAccess: true });
      const { results, document } = replayTrace(trace, { policy: "tiering", conf: `tiering_victim:${victim}`, capacityBytes, clockCalibration: clockCalibrationBeside(file), checkLocal: true });
      const d = document.devices[0];
      const c = d.policyCounters;
      expect(results[0].failedAllocs).toBe(0);
      expect(d.tiering!.unservedUses).toBe(0);
      expect(d.tiering!.usesWithoutAccess).toBe(0);
      expect(d.tiering!.peakDeviceBytes).toBeLessThanOrEqual(capacityBytes);
      expect(c.prefetchedPages).toBeGreaterThan(100);
      expect(c.prefetchedPages).toBeLessThanOrEqual(c.pagesIn);
      expect(c.pagesIn / d.driverCalls.copyIn, "pages a copy in").toBeGreaterThan(6);
    });
  }
});
