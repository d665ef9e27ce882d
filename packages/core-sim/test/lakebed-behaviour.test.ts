import { describe, expect, it } from "vitest";
import { parseAllocConf, replayDevice, type DeviceReplayResult } from "@lakebed/core-sim";
import { MiB, buildTrace, type Op } from "./support/traces.js";

/**
 * The lakebed policy (assembly/policies/lakebed/lakebed.ts) on hand-built traces: per-(stream, pool) arenas
 * packed at 512 bytes, backed by fungible chunks of the arena's page size that move lazily from
 * idle pages. The page mechanics are shown with 2 MiB pages in both pools (lakebed_large_page_mb:2),
 * the large pages of the default below them. Every replay checks isValid after every event.
 */
function replay(ops: Op[], extra: { capacityBytes?: number; streams?: number; conf?: string } = {}): DeviceReplayResult {
  return replayDevice(buildTrace(ops, extra.streams ?? 1), {
    policy: "lakebed",
    conf: parseAllocConf(extra.conf ?? "lakebed_large_page_mb:2"),
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

  it("places a block at the back of its free range when the back touches fewer new pages", () => {
    const r = replay([
      { alloc: 2 * MiB, name: "a" }, // page 0
      { alloc: 6.5 * MiB, name: "h" }, // [2, 8.5) MiB: pages 1-4
      { alloc: 2.5 * MiB, name: "b" }, // [8.5, 11) MiB: pages 4-5
      { free: "h" }, // pages 1-3 idle, page 4 still b's
      // the front, [2, 4.5), would touch pages 1 and 2; the back, [6, 8.5), page 3 and b's page 4
      { alloc: 2.5 * MiB, name: "c" },
    ]);
    const blocks = r.finalSegments.flatMap((s) => s.blocks.filter((b) => b.state === "allocated"));
    expect(blocks.map((b) => (b.address - blocks[0].address) / MiB)).toEqual([0, 6, 8.5]);
    expect(calls(r, "memCreate")).toBe(6);
    expect(r.policyCounters.chunkMoves).toBe(0);
  });

  it("a page let go keeps mapping its chunk after the chunk went to another page, and takes it back with no driver call", () => {
    const ops: Op[] = [
      { alloc: 2 * MiB, name: "a" }, // page 0
      { alloc: 2 * MiB, name: "b" }, // page 1
      { free: "a" }, // page 0's chunk free
      { alloc: 4 * MiB, name: "c" }, // pages 2-3: page 0's chunk, mapped at page 2 too, and a new one
      { free: "c" }, // both free again
    ];
    const before = replay(ops);
    expect(calls(before, "memCreate")).toBe(3);
    expect(calls(before, "map")).toBe(4);
    expect(calls(before, "unmap")).toBe(0);
    expect(before.policyCounters.chunkMoves).toBe(1);
    // the layout shows each chunk once: its segments add up to the reserved bytes
    expect(before.finalSegments.reduce((n, s) => n + s.totalSize, 0)).toBe(6 * MiB);
    expect(before.stats["reserved_bytes.all.current"]).toBe(6 * MiB);
    const after = replay([...ops, { alloc: 2 * MiB, name: "d" }]); // [0, 2 MiB): page 0, its chunk free
    expect(after.driverCalls).toEqual(before.driverCalls);
    expect(after.peakReservedBytes).toBe(6 * MiB);
  });

  it("unmaps a page whose chunk another page holds before backing it with another chunk", () => {
    const r = replay([
      { alloc: 2 * MiB, name: "a" }, // page 0
      { alloc: 2 * MiB, name: "b" }, // page 1
      { free: "a" },
      { alloc: 4 * MiB, name: "c" }, // pages 2-3: page 0's chunk is page 2's now
      { alloc: 2 * MiB, name: "d" }, // page 0 again: its chunk is in use, so it is unmapped there and a new one mapped
    ]);
    expect(calls(r, "memCreate")).toBe(4);
    expect(calls(r, "unmap")).toBe(1);
    expect(calls(r, "map")).toBe(5);
    expect(r.policyCounters.aliasUnmaps).toBe(1);
    expect(r.peakReservedBytes).toBe(8 * MiB);
  });

  it("takes the chunk of the idle page forecast to be touched last, not the oldest one", () => {
    const r = replay(
      [
        { alloc: 2 * MiB, name: "x", stream: 0 }, // page 0
        { alloc: 2 * MiB, name: "y", stream: 0 }, // page 1
        { free: "x" },
        { alloc: 2 * MiB, name: "x2", stream: 0 }, // page 0 again, one malloc after it was let go
        { free: "x2" }, // page 0 idle first, forecast to be touched again a malloc later
        { free: "y" }, // page 1 idle, never touched again yet: no forecast, so it goes first
        { alloc: 2 * MiB, name: "w", stream: 1 }, // another arena: takes page 1's chunk
        { alloc: 2 * MiB, name: "v", stream: 0 }, // page 0 kept its chunk: no move
      ],
      { streams: 2 },
    );
    expect(calls(r, "memCreate")).toBe(2);
    expect(r.policyCounters.chunkMoves).toBe(1);
    expect(calls(r, "unmap")).toBe(1);
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

  describe("with the default 20 MiB pages for large blocks", () => {
    const byDefault = { conf: "" };

    it("backs a large block with 20 MiB chunks and a small one with a 2 MiB chunk", () => {
      const r = replay(
        [
          { alloc: 3 * MiB, name: "a" }, // large arena, page 0
          { alloc: 512 * 1024, name: "b" }, // small arena, page 0
        ],
        byDefault,
      );
      expect(r.stats["reserved_bytes.large_pool.peak"]).toBe(20 * MiB);
      expect(r.stats["reserved_bytes.small_pool.peak"]).toBe(2 * MiB);
      expect(calls(r, "memCreate")).toBe(2);
      expect(r.peakReservedBytes).toBe(22 * MiB);
    });

    it("hands free 20 MiB chunks to new pages of the same arena without an unmap, and creates only the rest", () => {
      const r = replay(
        [
          { alloc: 40 * MiB, name: "a" }, // pages 0-1
          { alloc: 40 * MiB, name: "b" }, // pages 2-3
          { free: "a" }, // pages 0-1 let go, their chunks free
          { alloc: 60 * MiB, name: "c" }, // no room in [0, 40 MiB): pages 4-6, two free chunks, one new
        ],
        byDefault,
      );
      expect(calls(r, "memCreate")).toBe(5);
      expect(r.policyCounters.chunkMoves).toBe(2);
      expect(calls(r, "unmap")).toBe(0); // pages 0-1 still map their chunks, which pages 4-5 hold now
      expect(calls(r, "map")).toBe(7);
      expect(r.peakReservedBytes).toBe(100 * MiB);
    });

    it("never gives a small-pool chunk to a large page: chunks of different sizes do not mix", () => {
      const ops: Op[] = [
        { alloc: 512 * 1024, name: "a" }, // small arena
        { free: "a" }, // its page idle
        { alloc: 3 * MiB, name: "b" }, // large arena
      ];
      const large = replay(ops, byDefault);
      expect(large.policyCounters.chunkMoves).toBe(0);
      expect(calls(large, "memCreate")).toBe(2);
      // the new 20 MiB chunk would raise the peak, so the idle 2 MiB chunk is released first
      expect(calls(large, "memRelease")).toBe(1);
      expect(large.peakReservedBytes).toBe(20 * MiB);
      // with 2 MiB pages in both pools the idle small-pool chunk serves the large block
      const same = replay(ops);
      expect(same.policyCounters.chunkMoves).toBe(1);
      expect(same.peakReservedBytes).toBe(4 * MiB);
    });

    it("under a limit releases the other pool's idle chunks before it reports out of memory", () => {
      const r = replay(
        [
          { alloc: 32 * MiB, name: "a" }, // two 20 MiB chunks
          { free: "a" }, // idle, and no use to the small pool
          { alloc: 512 * 1024, name: "b" }, // a 2 MiB chunk would pass 41 MiB: release the idle 40 MiB
        ],
        { ...byDefault, capacityBytes: 41 * MiB },
      );
      expect(r.ooms).toBe(0);
      expect(r.allocRetries).toBe(1);
      expect(calls(r, "memRelease")).toBe(2);
      expect(r.stats["reserved_bytes.all.current"]).toBe(2 * MiB);
      expect(r.peakReservedBytes).toBe(40 * MiB);
    });
  });
});
