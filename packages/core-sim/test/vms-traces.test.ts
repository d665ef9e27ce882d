import { describe, expect, it } from "vitest";
import { parseAllocConf } from "@lakebed/core-sim";
import { haveSharedTraces, recordedTraces } from "../../../test/support/shared-traces.js";
import { CHECKED_REPLAY_TIMEOUT_MS, replayRecorded } from "./support/policy-traces.js";

/**
 * Every shared trace through the vms policy with isValid (INV-VMS-* and the small pool's
 * INV-CACHE-*) after every event: GMLake's defaults, and the settings that stitch the most.
 */
describe.skipIf(!haveSharedTraces)("vms on the recorded traces", () => {
  for (const { name } of recordedTraces()) {
    it(`${name}: GMLake's defaults, valid after every event`, async () => {
      const r = await replayRecorded(name, "vms", 1);
      expect(r.failedAllocs).toBe(0);
      // stitching never creates physical memory: reserved is at least what is allocated
      expect(r.peakReservedBytes).toBeGreaterThanOrEqual(r.peakAllocatedBytes);
    }, CHECKED_REPLAY_TIMEOUT_MS);

    // Stitching everything keeps dozens of views alive, each walked chunk by chunk per check:
    // every 8th event keeps this within minutes on the 300,000-event traces.
    it(`${name}: fragLimit 2 MiB with reAlloc, valid after every 8th event`, async () => {
      const r = await replayRecorded(name, "vms", 8, parseAllocConf("fragLimit:2097152,reAlloc:1"));
      expect(r.failedAllocs).toBe(0);
      expect(r.policyCounters.stitches).toBeGreaterThan(0);
    }, CHECKED_REPLAY_TIMEOUT_MS);
  }
});
