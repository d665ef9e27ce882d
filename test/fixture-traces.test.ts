import { describe, expect, it } from "vitest";
import { readTrace } from "@lakebed/traces";
import { replayTrace, verifyTrace } from "@lakebed/api";
import { fixtureTraces } from "./support/shared-traces.js";

/**
 * The traces shipped in test/fixtures/recorded, recorded on an H100 or H200 under allocator settings
 * the shared traces do not use (max_split_size_mb, roundup_power2_divisions, max_non_split_rounding_mb,
 * garbage_collection_threshold with and without a memory fraction, OOMs under a limit, three streams,
 * truncated ring buffers, two devices): the emulation must reproduce PyTorch's segment events, final
 * layout and statistics, on every device.
 */
describe("traces recorded under other allocator settings reproduce PyTorch", () => {
  for (const t of fixtureTraces()) {
    it(`${t.name} (${t.allocConf}${t.capacityBytes ? `, capacity ${t.capacityBytes}` : ""}, ring of ${t.maxEntries})`, async () => {
      const trace = await readTrace(t.file);
      const truncated = trace.devices.some((d) => d.events.length >= t.maxEntries);
      const verified = verifyTrace(trace, { capacityBytes: t.capacityBytes });
      const recordedDevices = Object.keys(t.statsByDevice).map(Number);
      expect(verified.devices.map((d) => [d.device, d.firstMismatch, d.finalStateDifference])).toEqual(
        recordedDevices.map((d) => [d, null, null]),
      );
      expect(verified.match).toBe(true);

      const devices = replayTrace(trace, { capacityBytes: t.capacityBytes }).document.devices;
      expect(devices.map((d) => d.device)).toEqual(recordedDevices);
      for (const device of devices) {
        const stats = t.statsByDevice[device.device];
        // The state at the end is the same whether or not the ring buffer kept everything; counters
        // and peaks are the trace's own only when it holds the whole run.
        const compared = truncated ? Object.keys(stats).filter((k) => k.endsWith(".current")) : Object.keys(stats);
        const emulated = Object.fromEntries(compared.map((k) => [k, device.stats[k]]));
        expect(emulated, `device ${device.device}`).toEqual(Object.fromEntries(compared.map((k) => [k, stats[k]])));
        if (!truncated) {
          expect(device.peakReservedBytes).toBe(stats["reserved_bytes.all.peak"]);
          expect(device.deviceAllocs).toBe(stats["num_device_alloc"]);
        }
      }
    });
  }
});
