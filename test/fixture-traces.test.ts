import { describe, expect, it } from "vitest";
import { readTrace } from "@lakebed/traces";
import { replayTrace, verifyTrace } from "@lakebed/api";
import { fixtureTraces } from "./support/shared-traces.js";

/**
 * The traces shipped in test/fixtures/recorded, recorded on an H100 under allocator settings the
 * shared traces do not use (max_split_size_mb, roundup_power2_divisions, max_non_split_rounding_mb,
 * garbage_collection_threshold under a memory fraction, OOMs under a limit, three streams, truncated
 * ring buffers): the emulation must reproduce PyTorch's segment events, final layout and statistics.
 */
describe("traces recorded under other allocator settings reproduce PyTorch", () => {
  for (const t of fixtureTraces()) {
    it(`${t.name} (${t.allocConf}${t.capacityBytes ? `, capacity ${t.capacityBytes}` : ""}${t.truncated ? ", truncated" : ""})`, async () => {
      const trace = await readTrace(t.file);
      const verified = verifyTrace(trace, { capacityBytes: t.capacityBytes });
      expect(verified.devices.map((d) => [d.firstMismatch, d.finalStateDifference])).toEqual([[null, null]]);
      expect(verified.match).toBe(true);

      const [device] = replayTrace(trace, { capacityBytes: t.capacityBytes }).document.devices;
      // The state at the end is the same whether or not the ring buffer kept everything; counters
      // and peaks are the trace's own only when it holds the whole run.
      const compared = t.truncated ? Object.keys(t.stats).filter((k) => k.endsWith(".current")) : Object.keys(t.stats);
      const emulated = Object.fromEntries(compared.map((k) => [k, device.stats[k]]));
      expect(emulated).toEqual(Object.fromEntries(compared.map((k) => [k, t.stats[k]])));
      if (!t.truncated) {
        expect(device.peakReservedBytes).toBe(t.stats["reserved_bytes.all.peak"]);
        expect(device.deviceAllocs).toBe(t.stats["num_device_alloc"]);
      }
    });
  }
});
