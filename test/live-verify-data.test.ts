import { describe, expect, it } from "vitest";
import { readTrace, type Trace } from "@lakebed/traces";
import { DeviceReplay } from "@lakebed/core-sim";
import { bindDriver, CallRecorder, replayLive, resolvePolicy } from "@lakebed/api";
import { openDriver } from "@lakebed/native-cuda";
import { haveSharedTraces, recordedTraces } from "./support/shared-traces.js";
import { hostAvailable, liveBackends, withBackends } from "./support/live-drivers.js";

/**
 * --verify-data on real memory: every allocation gets the check pattern written across it (first
 * and last bytes, and across every 2 MiB boundary) and read back before it is freed, so two live
 * allocations that share memory are caught. Every shared trace, under its recorded policy and under
 * vms (whose stitched ranges map the same physical chunks at a second address).
 */
describe.skipIf(!haveSharedTraces || !hostAvailable)("live replays with --verify-data", () => {
  for (const t of recordedTraces()) {
    it(withBackends(`${t.name}: every allocation's pattern survives until its free`), async () => {
      const trace = await readTrace(t.file);
      for (const backend of liveBackends) {
        for (const policy of [undefined, "vms"] as const) {
          const { document } = await replayLive(trace, { backend, policy, capacityBytes: t.capacityBytes, verifyData: true });
          for (const d of document.devices) {
            const where = `${t.name} ${document.policy} on ${backend}`;
            // one check per allocation the policy served (PyTorch's own count of allocations)
            expect(d.verifiedAllocations, where).toBe(d.stats["allocation.all.allocated"]);
            expect(d.verifiedAllocations, where).toBeGreaterThan(0);
            expect(d.verifyFailures, where).toBe(0);
            expect(d.firstVerifyFailureEventIndex, where).toBe(-1);
            expect(d.driverCounters.fillPattern, where).toBe(d.verifiedAllocations);
            expect(d.driverCounters.checkPattern, where).toBe(d.verifiedAllocations);
            expect(d.leaks, where).toEqual({ handles: 0, reservations: 0, mappings: 0, mallocs: 0 });
          }
        }
      }
    });
  }

  it("a byte changed behind the policy's back is caught at that allocation's free", async () => {
    const t = recordedTraces().find((r) => r.name === "two_streams.def")!;
    const trace: Trace = await readTrace(t.file);
    const device = trace.devices[0];
    const { policy, conf } = resolvePolicy(trace, {});
    const driver = openDriver("host");
    try {
      const bound = bindDriver(driver, new CallRecorder());
      // the 100th allocation's first byte is overwritten right after its pattern went in, as a
      // second allocation sharing its memory would
      let fills = 0;
      const fill = bound.imports.fillPattern;
      bound.imports.fillPattern = (va: number, bytes: number, seed: number) => {
        fill(va, bytes, seed);
        if (++fills === 100) driver.memset(va, 0xee, 1);
      };
      const session = new DeviceReplay(device, { policy, conf, traceAddresses: false, verifyData: true, deviceImports: bound.imports });
      bound.setMemory(session.wasm.memory);
      while (!session.done) session.step();
      const result = session.result();
      expect(result.verifyFailures).toBe(1);
      expect(result.firstVerifyFailureEventIndex).toBeGreaterThan(0);
      expect(result.verifiedAllocations).toBe(result.stats["allocation.all.allocated"]);
    } finally {
      driver.teardown();
    }
    expect(driver.leakReport().clean).toBe(true);
  });
});
