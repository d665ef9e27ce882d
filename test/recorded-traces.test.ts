import { describe, expect, it } from "vitest";
import { readTrace } from "@lakebed/traces";
import { replayTrace, verifyTrace } from "@lakebed/api";
import { haveSharedTraces, recordedTraces } from "./support/shared-traces.js";

/**
 * The ground truth: for every trace recorded for the project, replaying it with the policy and
 * settings it was recorded with reproduces PyTorch's own segment events and final layout, and
 * PyTorch's own statistics (torch.cuda.memory_stats() at the end of the same run), byte for byte.
 */
describe.skipIf(!haveSharedTraces)("recorded traces reproduce PyTorch", () => {
  for (const t of recordedTraces()) {
    it(`${t.name}: verify matches`, async () => {
      const trace = await readTrace(t.file);
      const document = verifyTrace(trace, { capacityBytes: t.capacityBytes });
      expect(document.devices.map((d) => d.firstMismatch)).toEqual(document.devices.map(() => null));
      expect(document.devices.map((d) => d.finalStateDifference)).toEqual(document.devices.map(() => null));
      expect(document.match).toBe(true);
    });

    it(`${t.name}: every recorded statistic matches`, async () => {
      const trace = await readTrace(t.file);
      const { document } = replayTrace(trace, { capacityBytes: t.capacityBytes });
      expect(document.devices).toHaveLength(1);
      const [device] = document.devices;
      expect(device.peakReservedBytes).toBe(t.stats["reserved_bytes.all.peak"]);
      expect(device.peakAllocatedBytes).toBe(t.stats["allocated_bytes.all.peak"]);
      expect(device.deviceAllocs).toBe(t.stats["num_device_alloc"]);
      const emulated = Object.fromEntries(Object.keys(t.stats).map((k) => [k, device.stats[k]]));
      expect(emulated).toEqual(t.stats);
    });
  }
});
