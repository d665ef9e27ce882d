import { describe, expect, it } from "vitest";
import { parseAllocConf, replayDevice } from "@lakebed/core-sim";
import { MiB, buildTrace } from "./support/traces.js";
import { randomProgram, replayRandomProgram } from "./support/random-program.js";

/**
 * The vms policy under seeded random programs, with isValid (INV-VMS-*, and INV-CACHE-* for the
 * small pool and the shared stats) after every event, under GMLake's settings and tight limits:
 * stitching at every stage, reuse at every reuseLimit, collection with a tiny autoGC, physical
 * release under views in use, the shortfall mode.
 */
const SETTINGS: { conf: string; capacityMiB?: number }[] = [
  { conf: "" },
  { conf: "fragLimit:2097152" },
  { conf: "fragLimit:2097152,reAlloc:1" },
  { conf: "fragLimit:2097152", capacityMiB: 1536 },
  { conf: "fragLimit:2097152,reAlloc:1,autoGC:0.05", capacityMiB: 1536 },
  { conf: "fragLimit:33554432,defragLevel:1,reuseLimit:1.5", capacityMiB: 1536 },
  { conf: "fragLimit:2097152,defragLevel:2,max_split_size_mb:64", capacityMiB: 1536 },
  { conf: "vmmDefragment:0", capacityMiB: 1536 },
];

describe("vms: random programs keep every invariant", () => {
  for (const [i, s] of SETTINGS.entries()) {
    for (const streams of [1, 3]) {
      it(`"${s.conf}"${s.capacityMiB ? ` at ${s.capacityMiB} MiB` : ""}, ${streams} stream(s)`, () => {
        const r = replayRandomProgram("vms", s.conf, 7000 + 100 * i + streams, streams, s.capacityMiB);
        const stats = r.stats;
        // a view owns no memory: the layout's segments are the physical ones
        const reserved = r.finalSegments.reduce((n, seg) => n + seg.totalSize, 0);
        expect(reserved).toBe(stats["reserved_bytes.all.current"]);
        expect(r.finalSegments).toHaveLength(stats["segment.all.current"]);
        expect(stats["num_device_alloc"] - stats["num_device_free"]).toBe(stats["segment.all.current"]);
      });
    }
  }

  it("the programs reach the paths they are meant to", () => {
    const reached = { stitches: 0, reuses: 0, collected: 0, reAllocs: 0, releases: 0 };
    for (const [i, s] of SETTINGS.entries()) {
      for (const streams of [1, 3]) {
        const r = replayDevice(buildTrace(randomProgram(7000 + 100 * i + streams, 4000, streams), streams), {
          policy: "vms",
          conf: parseAllocConf(s.conf),
          capacityBytes: s.capacityMiB ? s.capacityMiB * MiB : undefined,
        });
        reached.stitches += r.policyCounters.stitches;
        reached.reuses += r.policyCounters.stitchReuses;
        reached.collected += r.policyCounters.stitchesCollected;
        reached.reAllocs += r.policyCounters.reAllocs;
        reached.releases += r.deviceFrees;
      }
    }
    for (const [path, count] of Object.entries(reached)) expect(count, path).toBeGreaterThan(0);
  });
});
