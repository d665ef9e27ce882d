import { describe, expect, it } from "vitest";
import { parseAllocConf, replayDevice, type DeviceReplayResult } from "@lakebed/core-sim";
import { MiB, buildTrace, type Op } from "./support/traces.js";

/**
 * The lakebed policy (assembly/policies/lakebed/lakebed.ts) on hand-built traces: per-(stream, pool) arenas
 * packed at 512 bytes, backed by fungible 2 MiB chunks that move lazily from idle pages. Every
 * replay checks isValid after every event.
 */
function replay(ops: Op[], extra: { capacityBytes?: number; streams?: number } = {}): DeviceReplayResult {
  return replayDevice(buildTrace(ops, extra.streams ?? 1), {
    policy: "lakebed",
    conf: parseAllocConf(""),
    capacityBytes: extra.capacityBytes,
    checkEvery: 1,
  });
}

const calls = (r: DeviceReplayResult, name: string) => r.driverCalls[name] ?? 0;

describe("lakebed", () => {
  it("packs blocks at 512-byte granularity: reserved memory is the pages the blocks touch", () => {
    const r = replay([
      { alloc: 3 * MiB, name: "a" }, // pages 0-1 of the large arena
      { alloc: 3 * MiB, name: "b" }, // right after a: pages 1-2
    ]);
    expect(r.peakReservedBytes).toBe(6 * MiB);
    const blocks = r.finalSegments.flatMap((s) => s.blocks.filter((b) => b.state === "allocated"));
    expect(blocks[1].address - blocks[0].address).toBe(3 * MiB);
    expect(calls(r, "memCreate")).toBe(3);
  });

  it("keeps the chunks of freed pages (idle) and serves the next block with no driver call", () => {
    const r = replay([
      { alloc: 8 * MiB, name: "a" },
      { free: "a" },
      { alloc: 8 * MiB, name: "b" },
    ]);
    expect(calls(r, "memCreate")).toBe(4);
    expect(calls(r, "map")).toBe(4);
    expect(calls(r, "unmap")).toBe(0);
    expect(r.peakReservedBytes).toBe(8 * MiB);
  });

  it("moves idle chunks to another stream's arena instead of creating memory", () => {
    const r = replay(
      [
        { alloc: 4 * MiB, name: "a", stream: 0 },
        { free: "a" },
        { alloc: 4 * MiB, name: "b", stream: 1 },
      ],
      { streams: 2 },
    );
    expect(calls(r, "memCreate")).toBe(2);
    expect(r.policyCounters.chunkMoves).toBe(2);
    expect(calls(r, "unmap")).toBe(1); // the two idle pages are neighbours: one unmap
    expect(r.peakReservedBytes).toBe(4 * MiB);
  });

  it("at the capacity synchronizes frees still waiting on other streams, then takes their chunks", () => {
    const r = replay(
      [
        { alloc: 4 * MiB, name: "a" },
        { freeRequested: "a" }, // pending: a side stream still uses it
        { alloc: 4 * MiB, name: "b" }, // no chunk left under 4 MiB: synchronize, a's pages go idle
        { freeCompleted: "a" }, // already completed by the synchronization: skipped
      ],
      { capacityBytes: 4 * MiB },
    );
    expect(r.ooms).toBe(0);
    expect(r.allocRetries).toBe(1);
    expect(r.stats["num_sync_all_streams"]).toBe(1);
    expect(r.peakReservedBytes).toBe(4 * MiB);
  });

  it("reports out of memory when the live blocks alone need more than the capacity", () => {
    const r = replay(
      [
        { alloc: 4 * MiB, name: "a" },
        { alloc: 4 * MiB, name: "b" },
      ],
      { capacityBytes: 6 * MiB },
    );
    expect(r.ooms).toBe(1);
    expect(r.failedAllocs).toBe(1);
    expect(r.peakReservedBytes).toBeLessThanOrEqual(6 * MiB);
  });

  it("on empty_cache releases every idle chunk", () => {
    const r = replay([
      { alloc: 6 * MiB, name: "a" },
      { alloc: 2 * MiB, name: "b" },
      { free: "a" },
      { segmentFree: 0, bytes: 6 * MiB },
    ]);
    expect(r.emptyCacheCalls).toBe(1);
    expect(calls(r, "memRelease")).toBe(3);
    expect(r.stats["reserved_bytes.all.current"]).toBe(2 * MiB);
  });
});
