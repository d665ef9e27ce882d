import { describe, expect, it } from "vitest";
import { parseAllocConf, replayDevice } from "@lakebed/core-sim";
import { MiB, buildTrace } from "./support/traces.js";
import { randomProgram } from "./support/random-program.js";

/**
 * The lakebed policy under seeded random programs, with isValid (INV-LB-*) after every event:
 * chunk moves across arenas and streams, synchronization of waiting frees at the limit,
 * empty_cache, and its two settings.
 */
const SETTINGS: { conf: string; capacityMiB?: number }[] = [
  { conf: "" },
  { conf: "", capacityMiB: 1024 },
  { conf: "lakebed_slack_permille:50", capacityMiB: 1024 },
  { conf: "lakebed_fit_window:16" },
];

describe("lakebed: random programs keep every invariant", () => {
  for (const [i, s] of SETTINGS.entries()) {
    for (const streams of [1, 3]) {
      it(`"${s.conf}"${s.capacityMiB ? ` at ${s.capacityMiB} MiB` : ""}, ${streams} stream(s)`, () => {
        const trace = buildTrace(randomProgram(9000 + 100 * i + streams, 4000, streams), streams);
        const options = { policy: "lakebed" as const, conf: parseAllocConf(s.conf), capacityBytes: s.capacityMiB ? s.capacityMiB * MiB : undefined, checkEvery: 1 };
        const r = replayDevice(trace, options);
        const stats = r.stats;
        expect(stats["allocated_bytes.all.current"]).toBeLessThanOrEqual(stats["active_bytes.all.current"]);
        expect(stats["active_bytes.all.current"]).toBeLessThanOrEqual(stats["reserved_bytes.all.current"]);
        if (s.capacityMiB) expect(stats["reserved_bytes.all.peak"]).toBeLessThanOrEqual(s.capacityMiB * MiB);
        expect(replayDevice(trace, options).stats).toEqual(stats);
      });
    }
  }
});
