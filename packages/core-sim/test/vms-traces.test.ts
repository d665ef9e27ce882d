import { describe, expect, it } from "vitest";
import { parseAllocConf } from "@lakebed/core-sim";
import { haveSharedTraces, recordedTraces } from "../../../test/support/shared-traces.js";
import { CHECK_EVERY_EVENT, replayRecorded } from "./support/policy-traces.js";

/**
 * Every shared trace through the vms policy with isValid (INV-VMS-* and the small pool's
 * INV-CACHE-*) after every event (the local check; the whole walk every 1,024 events and
 * at the end): GMLake's defaults, and the settings that stitch the most.
 */
describe.skipIf(!haveSharedTraces)("vms on the recorded traces", () => {
  for (const { name } of recordedTraces()) {
    it(`${name}: GMLake's defaults, valid after every event`, async () => {
      const r = await replayRecorded(name, "vms", CHECK_EVERY_EVENT);
      expect(r.failedAllocs).toBe(0);
      // stitching never creates physical memory: reserved is at least what is allocated
      expect(r.peakReservedBytes).toBeGreaterThanOrEqual(r.peakAllocatedBytes);
    });

    // Stitching everything keeps dozens of views alive: the whole walk visits each chunk by chunk,
    // the local check only the views an event changed.
    it(`${name}: fragLimit 2 MiB with reAlloc, valid after every event`, async () => {
      const r = await replayRecorded(name, "vms", CHECK_EVERY_EVENT, parseAllocConf("fragLimit:2097152,reAlloc:1"));
      expect(r.failedAllocs).toBe(0);
      expect(r.policyCounters.stitches).toBeGreaterThan(0);
    });
  }
});
