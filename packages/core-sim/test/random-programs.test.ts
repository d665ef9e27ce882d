import { describe, expect, it } from "vitest";
import { parseAllocConf, replayDevice } from "@lakebed/core-sim";
import { Action } from "@lakebed/traces";
import { MiB, buildTrace } from "./support/traces.js";
import { randomProgram, replayRandomProgram } from "./support/random-program.js";

/**
 * Seeded random programs (allocations of every size class on up to three streams, frees, frees
 * that wait on other streams, empty_cache calls, out-of-memory entries) under many settings and
 * tight limits, replayed with isValid after every event. They reach the paths the recorded traces
 * do not: garbage collection, release of oversize segments, unmapping under pressure.
 */
const SETTINGS: { conf: string; capacityMiB?: number }[] = [
  { conf: "" },
  { conf: "", capacityMiB: 1536 },
  { conf: "max_split_size_mb:32", capacityMiB: 1536 },
  { conf: "max_split_size_mb:64,max_non_split_rounding_mb:48,garbage_collection_threshold:0.7", capacityMiB: 1536 },
  { conf: "garbage_collection_threshold:0.5", capacityMiB: 2048 },
  { conf: "roundup_power2_divisions:[1:2,64:4,>:8]", capacityMiB: 1536 },
  { conf: "expandable_segments:True" },
  { conf: "expandable_segments:True", capacityMiB: 1536 },
  { conf: "expandable_segments:True,max_split_size_mb:40,garbage_collection_threshold:0.6", capacityMiB: 1536 },
];

describe("random programs keep every invariant", () => {
  for (const [i, s] of SETTINGS.entries()) {
    for (const streams of [1, 3]) {
      it(`"${s.conf}"${s.capacityMiB ? ` at ${s.capacityMiB} MiB` : ""}, ${streams} stream(s)`, () => {
        const conf = parseAllocConf(s.conf);
        const r = replayRandomProgram(conf.expandableSegments ? "expandable" : "caching", s.conf, 1000 * i + streams, streams, s.capacityMiB);
        const stats = r.stats;
        const reserved = r.finalSegments.reduce((n, seg) => n + seg.totalSize, 0);
        expect(reserved).toBe(stats["reserved_bytes.all.current"]);
        // (with expandable segments one map can come back as several unmaps, so frees may
        // outnumber allocs there; only whole segments pair up one to one)
        if (!conf.expandableSegments) {
          expect(r.finalSegments).toHaveLength(stats["segment.all.current"]);
          expect(stats["num_device_alloc"] - stats["num_device_free"]).toBe(stats["segment.all.current"]);
        }
      });
    }
  }

  it("the programs reach the paths they are meant to", () => {
    const reached = { gcOrAvailable: 0, retries: 0, ooms: 0, unmaps: 0 };
    for (const [i, s] of SETTINGS.entries()) {
      for (const streams of [1, 3]) {
        const conf = parseAllocConf(s.conf);
        const r = replayDevice(buildTrace(randomProgram(1000 * i + streams, 4000, streams), streams), {
          policy: conf.expandableSegments ? "expandable" : "caching",
          conf,
          capacityBytes: s.capacityMiB ? s.capacityMiB * MiB : undefined,
        });
        if ((conf.garbageCollectionThreshold > 0 || conf.maxSplitSizeBytes !== null) && r.deviceFrees > 0) reached.gcOrAvailable++;
        reached.retries += r.allocRetries;
        reached.ooms += r.ooms;
        reached.unmaps += r.segmentEvents.filter((e) => e.action === Action.SegmentUnmap).length;
      }
    }
    expect(reached.gcOrAvailable).toBeGreaterThan(0);
    expect(reached.retries).toBeGreaterThan(0);
    expect(reached.ooms).toBeGreaterThan(0);
    expect(reached.unmaps).toBeGreaterThan(0);
  });
});
