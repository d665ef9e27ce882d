import { describe, expect, it } from "vitest";
import { lakebed, snapshotJson, tempFile } from "./support/cli.js";
import { liveBackends } from "./support/live-drivers.js";

/**
 * A live driver holds what the simulated device holds (max(device total, limit)), so that it refuses
 * the same memCreate and malloc calls. An out-of-memory request larger than any GPU (128 GiB here,
 * past expandable segments' 1 1/8 x total reservation) once reached host memory, which granted far
 * more: expandable segments mapped 89 GiB before failing, or stopped in the Wasm with an index out of
 * range, where the simulator refuses at the device's total and reserves 2 MiB.
 */
const MIB = 2 ** 21;
const SEGMENT = 10 * MIB;
const trace = tempFile(
  "oom-128g.json",
  snapshotJson([
    { action: "segment_alloc", addr: SEGMENT, size: MIB },
    { action: "alloc", addr: SEGMENT, size: 512 },
    { action: "oom", addr: 0, size: 128 * 2 ** 30, device_free: 0 },
    { action: "free_requested", addr: SEGMENT, size: 512 },
    { action: "free_completed", addr: SEGMENT, size: 512 },
    { action: "segment_free", addr: SEGMENT, size: MIB },
  ]),
);

function replay(policy: string, backend?: string) {
  const r = lakebed(["replay", trace, "--policy", policy, "--json", ...(backend ? ["--backend", backend] : [])]);
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  const [device] = JSON.parse(r.stdout).devices;
  return { peakReservedBytes: device.peakReservedBytes, ooms: device.ooms, driverCalls: device.driverCalls };
}

describe.skipIf(!liveBackends.includes("host"))("a live driver refuses where the simulated device does", () => {
  for (const policy of ["caching", "expandable", "lakebed"]) {
    it(`${policy}: a 128 GiB request fails live as simulated, with the same calls`, () => {
      const simulated = replay(policy);
      expect(simulated.ooms).toBe(1);
      expect(simulated.peakReservedBytes).toBe(MIB);
      expect(replay(policy, "host")).toEqual(simulated);
    });
  }
});
