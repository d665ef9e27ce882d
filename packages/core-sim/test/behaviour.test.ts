import { describe, expect, it } from "vitest";
import { Action } from "@lakebed/traces";
import { defaultAllocConf, parseAllocConf, replayDevice, type AllocatorConf, type DeviceReplayResult } from "@lakebed/core-sim";
import { MiB, buildTrace, type Op } from "./support/traces.js";

/**
 * Hand-built traces whose outcome follows from PyTorch's rules (reference part A), worked out by
 * hand in the comments. Every replay checks isValid after every event.
 */
function replay(ops: Op[], conf: AllocatorConf = defaultAllocConf(), extra: { capacityBytes?: number; streams?: number } = {}): DeviceReplayResult {
  return replayDevice(buildTrace(ops, extra.streams ?? 1), {
    policy: conf.expandableSegments ? "expandable" : "caching",
    conf,
    capacityBytes: extra.capacityBytes,
    checkEvery: 1,
  });
}

const events = (r: DeviceReplayResult) => r.segmentEvents.map((e) => [e.action, e.size]);
const A = Action;

describe("the caching allocator", () => {
  it("packs small requests into 2 MiB segments and reuses the best-fitting block", () => {
    const r = replay([
      { alloc: 1000, name: "a" }, // new 2 MiB small segment: [a 1024 | free]
      { alloc: 1000, name: "b" }, // [a 1024 | b 1024 | free]
      { free: "a" }, // [free 1024 | b | free]
      { alloc: 500, name: "c" }, // best fit is a's 1024 block: split, 512 left: [c 512 | free 512 | b | free]
    ]);
    expect(events(r)).toEqual([[A.SegmentAlloc, 2 * MiB]]);
    const [segment] = r.finalSegments;
    expect(segment.pool).toBe("small");
    expect(segment.blocks.map((b) => [b.address - segment.address, b.size, b.state])).toEqual([
      [0, 512, "allocated"],
      [512, 512, "inactive"],
      [1024, 1024, "allocated"],
      [2048, 2 * MiB - 2048, "inactive"],
    ]);
    expect(r.stats["allocated_bytes.all.current"]).toBe(1536);
    expect(r.stats["requested_bytes.all.current"]).toBe(1500);
    expect(r.stats["inactive_split.all.current"]).toBe(2);
    expect(r.stats["inactive_split_bytes.all.current"]).toBe(512 + 2 * MiB - 2048);
    expect(r.stats["allocated_bytes.small_pool.current"]).toBe(1536);
    expect(r.stats["allocated_bytes.large_pool.current"]).toBe(0);
    expect(r.stats["allocation.all.allocated"]).toBe(3);
    expect(r.stats["allocation.all.freed"]).toBe(1);
  });

  it("puts 1-10 MiB requests in shared 20 MiB segments and gives larger ones their own", () => {
    const r = replay([
      { alloc: 3 * MiB, name: "a" }, // 20 MiB segment, 17 MiB left
      { alloc: 11 * MiB, name: "b" }, // fits in the 17 MiB block: split (6 MiB > 1 MiB left)
      { alloc: 7 * MiB, name: "c" }, // 6 MiB is too small: a second 20 MiB segment
      { alloc: 11 * MiB, name: "d" }, // 13 MiB left there: 2 MiB remain, split
      { alloc: 15 * MiB, name: "e" }, // nothing cached fits: its own 16 MiB segment, kept whole
    ]);
    expect(events(r)).toEqual([
      [A.SegmentAlloc, 20 * MiB],
      [A.SegmentAlloc, 20 * MiB],
      [A.SegmentAlloc, 16 * MiB],
    ]);
    expect(r.stats["reserved_bytes.large_pool.current"]).toBe(56 * MiB);
    expect(r.stats["allocated_bytes.all.current"]).toBe((3 + 11 + 7 + 11 + 16) * MiB);
    expect(r.stats["inactive_split.all.current"]).toBe(2);
    expect(r.stats["inactive_split_bytes.all.current"]).toBe(8 * MiB);
  });

  it("hands out a whole block when the remainder would be 1 MiB or less (large pool)", () => {
    const r = replay([{ alloc: 11 * MiB, name: "a" }]);
    expect(r.finalSegments[0].blocks.map((b) => b.size)).toEqual([12 * MiB]);
    expect(r.stats["allocated_bytes.all.current"]).toBe(12 * MiB);
    expect(r.stats["requested_bytes.all.current"]).toBe(11 * MiB);
    expect(r.stats["inactive_split.all.current"]).toBe(0);
  });

  it("merges a freed block with free neighbours and counts inactive_split by the net change", () => {
    const r = replay([
      { alloc: 2 * MiB, name: "a" },
      { alloc: 2 * MiB, name: "b" },
      { alloc: 2 * MiB, name: "c" }, // [a|b|c|14 MiB free]: 1 inactive split block
      { free: "a" }, // 2 inactive split blocks
      { free: "c" }, // c merges with the tail: still 2
      { free: "b" }, // all merge back: the segment is whole again, 0
    ]);
    expect(r.stats["inactive_split.all.peak"]).toBe(2);
    expect(r.stats["inactive_split.all.current"]).toBe(0);
    expect(r.stats["inactive_split_bytes.all.current"]).toBe(0);
    expect(r.finalSegments[0].blocks).toHaveLength(1);
    expect(r.stats["active.all.current"]).toBe(0);
  });

  it("with max_split_size_mb, never splits oversize blocks nor gives them to small requests", () => {
    const r = replay(
      [
        { alloc: 30 * MiB, name: "a" }, // own 30 MiB segment, oversize: not split
        { free: "a" },
        { alloc: 5 * MiB, name: "b" }, // the 30 MiB block is oversize: a new 20 MiB segment (also oversize), split
        { alloc: 45 * MiB, name: "c" }, // a 46 MiB segment, whole
        { free: "c" },
        { alloc: 40 * MiB, name: "d" }, // the 46 MiB block is within 40 + 20 MiB: taken whole
        { free: "d" },
        { alloc: 25 * MiB, name: "e" }, // lower bound is the 30 MiB block (within 25 + 20): taken whole
      ],
      parseAllocConf("max_split_size_mb:20"),
    );
    expect(events(r)).toEqual([
      [A.SegmentAlloc, 30 * MiB],
      [A.SegmentAlloc, 20 * MiB],
      [A.SegmentAlloc, 46 * MiB],
    ]);
    expect(r.stats["allocated_bytes.all.current"]).toBe(35 * MiB);
    expect(r.stats["allocated_bytes.all.peak"]).toBe(51 * MiB);
    expect(r.stats["oversize_segments.current"]).toBe(3);
    expect(r.stats["oversize_allocations.current"]).toBe(1);
    expect(r.stats["oversize_allocations.peak"]).toBe(1);
    expect(r.stats["max_split_size"]).toBe(20 * MiB);
    expect(r.stats["inactive_split_bytes.all.current"]).toBe(15 * MiB);
  });

  it("keeps an oversize block for requests within max_non_split_rounding_mb of it", () => {
    const ops: Op[] = [
      { alloc: 100 * MiB, name: "a" },
      { free: "a" },
      { alloc: 70 * MiB, name: "b" }, // 100 >= 70 + 20: not with the default tolerance, fine with 40 MiB
    ];
    expect(replay(ops, parseAllocConf("max_split_size_mb:20")).deviceAllocs).toBe(2);
    expect(replay(ops, parseAllocConf("max_split_size_mb:20,max_non_split_rounding_mb:40")).deviceAllocs).toBe(1);
  });

  it("frees just enough cached oversize segments (release_available_cached_blocks) before retrying", () => {
    const r = replay(
      [
        { alloc: 40 * MiB, name: "a" },
        { alloc: 40 * MiB, name: "b" },
        { free: "a" },
        { free: "b" },
        // 80 + 60 > 100 MiB allowed. No single cached block >= 60 MiB: free the largest oversize
        // ones, the higher address first among equals, until 60 MiB are back; then allocate.
        { alloc: 60 * MiB, name: "c" },
      ],
      parseAllocConf("max_split_size_mb:20"),
      { capacityBytes: 100 * MiB },
    );
    const [sa, sb, f1, f2, sc] = r.segmentEvents;
    expect([sa.action, sb.action, f1.action, f2.action, sc.action]).toEqual([A.SegmentAlloc, A.SegmentAlloc, A.SegmentFree, A.SegmentFree, A.SegmentAlloc]);
    expect(f1.addr).toBe(Math.max(sa.addr, sb.addr));
    expect(f2.addr).toBe(Math.min(sa.addr, sb.addr));
    expect(sc.size).toBe(60 * MiB);
    expect(r.allocRetries).toBe(0);
    expect(r.ooms).toBe(0);
    expect(r.stats["num_device_free"]).toBe(2);
  });

  it("at the limit frees every cached segment, retries, and then reports out of memory", () => {
    const r = replay(
      [
        { alloc: 60 * MiB, name: "a" },
        { alloc: 30 * MiB, name: "b" },
        { free: "a" },
        // 90 + 70 > 100: release_cached_blocks frees a's segment, the retry fits (30 + 70)
        { alloc: 70 * MiB, name: "c" },
        // 100 + 50 > 100 and nothing is cached: retry, fail, out of memory
        { oom: 50 * MiB },
      ],
      defaultAllocConf(),
      { capacityBytes: 100 * MiB },
    );
    expect(events(r)).toEqual([
      [A.SegmentAlloc, 60 * MiB],
      [A.SegmentAlloc, 30 * MiB],
      [A.SegmentFree, 60 * MiB],
      [A.SegmentAlloc, 70 * MiB],
    ]);
    expect(r.segmentEvents[2].addr).toBe(r.segmentEvents[0].addr);
    expect(r.allocRetries).toBe(2);
    expect(r.ooms).toBe(1);
    expect(r.unexpectedOomSuccesses).toBe(0);
    expect(r.stats["num_sync_all_streams"]).toBe(2);
    expect(r.stats["reserved_bytes.all.current"]).toBe(100 * MiB);
  });

  it("counts an alloc the limit cannot serve and skips its frees", () => {
    const r = replay([{ alloc: 200 * MiB, name: "a" }, { free: "a" }, { alloc: 10 * MiB, name: "b" }], defaultAllocConf(), { capacityBytes: 100 * MiB });
    expect(r.failedAllocs).toBe(1);
    expect(r.ooms).toBe(1);
    expect(r.stats["allocation.all.current"]).toBe(1);
  });

  it("garbage-collects unsplit cached segments above threshold x limit, before allocating", () => {
    const ops: Op[] = [
      { alloc: 30 * MiB, name: "a" },
      { alloc: 24 * MiB, name: "b" },
      { free: "a" },
      { free: "b" },
      // 54 MiB obtained > 0.5 x 100 MiB: both cached segments are as old as the mean: both go
      { alloc: 40 * MiB, name: "c" },
    ];
    const r = replay(ops, parseAllocConf("garbage_collection_threshold:0.5"), { capacityBytes: 100 * MiB });
    expect(events(r)).toEqual([
      [A.SegmentAlloc, 30 * MiB],
      [A.SegmentAlloc, 24 * MiB],
      [A.SegmentFree, 24 * MiB],
      [A.SegmentFree, 30 * MiB],
      [A.SegmentAlloc, 40 * MiB],
    ]);
    expect(r.allocRetries).toBe(0);
    // without a limit the threshold does nothing (as in PyTorch, it needs a memory fraction)
    expect(replay(ops, parseAllocConf("garbage_collection_threshold:0.5")).deviceFrees).toBe(0);
    // below the threshold nothing is collected
    expect(replay(ops, parseAllocConf("garbage_collection_threshold:0.9"), { capacityBytes: 100 * MiB }).deviceFrees).toBe(0);
  });

  it("never reuses a block across streams, and keeps a record_stream block until its free completes", () => {
    const r = replay(
      [
        { alloc: 1000, name: "a", stream: 0 },
        { alloc: 1000, name: "b", stream: 1 }, // stream 1 cannot use stream 0's segment
        { alloc: 3 * MiB, name: "c", stream: 1 },
        { freeRequested: "c" }, // used on another stream: pending
        { alloc: 3 * MiB, name: "d", stream: 1 }, // c's block is not available: d goes after it
        { freeCompleted: "c" },
        { alloc: 2 * MiB, name: "e", stream: 1 },
        { freeRequested: "e" }, // still pending at the end
      ],
      defaultAllocConf(),
      { streams: 2 },
    );
    expect(events(r)).toEqual([
      [A.SegmentAlloc, 2 * MiB],
      [A.SegmentAlloc, 2 * MiB],
      [A.SegmentAlloc, 20 * MiB],
    ]);
    const large = r.finalSegments.find((s) => s.pool === "large")!;
    expect(large.stream).toBe(1);
    // e took c's freed block (best fit: 3 MiB is the smallest that fits), whole: a 1 MiB
    // remainder is not more than 1 MiB
    expect(large.blocks.map((b) => [b.address - large.address, b.size, b.state])).toEqual([
      [0, 3 * MiB, "pending_free"],
      [3 * MiB, 3 * MiB, "allocated"],
      [6 * MiB, 14 * MiB, "inactive"],
    ]);
    expect(r.stats["allocation.all.current"]).toBe(3);
    expect(r.stats["active.all.current"]).toBe(4);
    expect(r.stats["active_bytes.all.current"] - r.stats["allocated_bytes.all.current"]).toBe(3 * MiB);
    expect(r.stats["requested_bytes.all.current"]).toBe(1000 + 1000 + 3 * MiB + 2 * MiB);
    expect(r.finalSegments.filter((s) => s.pool === "small").map((s) => s.stream).sort()).toEqual([0, 1]);
  });

  it("reads a segment_free burst as empty_cache when the next request needs no reclaiming", () => {
    const r = replay([
      { alloc: 30 * MiB, name: "a" },
      { alloc: 1000, name: "b" },
      { free: "a" },
      { segmentFree: 0x7f0000000000, bytes: 30 * MiB }, // torch.cuda.empty_cache()
      { alloc: 1000, name: "c" }, // a cache hit: the burst was not this request's doing
    ]);
    expect(r.emptyCacheCalls).toBe(1);
    expect(events(r)).toEqual([
      [A.SegmentAlloc, 30 * MiB],
      [A.SegmentAlloc, 2 * MiB],
      [A.SegmentFree, 30 * MiB],
    ]);
    // logged at the first event of the burst (trace event 4)
    expect(r.segmentEvents[2].eventIndex).toBe(4);
    expect(r.stats["num_sync_all_streams"]).toBe(1);
  });
});

describe("expandable segments", () => {
  const conf = parseAllocConf("expandable_segments:True");

  it("maps 20 MiB pages as the pool grows, packs blocks tightly, and unmaps only on empty_cache", () => {
    const r = replay(
      [
        { alloc: 3 * MiB, name: "a" }, // reserve, map one 20 MiB page: [a 3 | free 17]
        { alloc: 30 * MiB, name: "b" }, // 17 free + map one more page: [a 3 | b 30 | free 7]
        { free: "a" },
        { segmentFree: 0x7f0000000000, bytes: 20 * MiB }, // empty_cache: no whole free page, nothing to unmap
        { free: "b" }, // everything merges: 40 MiB free, mapped
        { segmentFree: 0x7f0000000000, bytes: 20 * MiB }, // empty_cache: unmap both pages, release the reservation
      ],
      conf,
    );
    const [m1, m2, u] = r.segmentEvents;
    expect(events(r)).toEqual([
      [A.SegmentMap, 20 * MiB],
      [A.SegmentMap, 20 * MiB],
      [A.SegmentUnmap, 40 * MiB],
    ]);
    expect(m2.addr).toBe(m1.addr + 20 * MiB);
    expect(u.addr).toBe(m1.addr);
    expect(r.stats["reserved_bytes.all.peak"]).toBe(40 * MiB);
    expect(r.stats["reserved_bytes.all.current"]).toBe(0);
    expect(r.stats["segment.all.peak"]).toBe(0);
    expect(r.stats["inactive_split.all.peak"]).toBe(0);
    expect(r.stats["allocated_bytes.all.peak"]).toBe(33 * MiB);
    expect(r.driverCalls).toEqual({ memCreate: 2, memRelease: 2, addressReserve: 1, addressFree: 1, map: 2, setAccess: 2, unmap: 2 });
    expect(r.finalSegments).toEqual([]);
  });

  it("reports each contiguous mapped range as a segment, and small requests in 2 MiB pages", () => {
    const r = replay(
      [
        { alloc: 1000, name: "s" },
        { alloc: 25 * MiB, name: "a" }, // maps 40 MiB
        { alloc: 10 * MiB, name: "b" }, // 15 MiB left: fits
      ],
      conf,
    );
    expect(events(r)).toEqual([
      [A.SegmentMap, 2 * MiB],
      [A.SegmentMap, 40 * MiB],
    ]);
    const sizes = r.finalSegments.map((s) => [s.pool, s.expandable, s.totalSize, s.blocks.map((b) => b.size)]);
    expect(sizes).toContainEqual(["small", true, 2 * MiB, [1024, 2 * MiB - 1024]]);
    expect(sizes).toContainEqual(["large", true, 40 * MiB, [25 * MiB, 10 * MiB, 5 * MiB]]);
  });

  it("unmaps free pages and retries when the limit is reached", () => {
    const r = replay(
      [
        { alloc: 50 * MiB, name: "a" }, // maps 60 MiB
        { alloc: 30 * MiB, name: "b" }, // 10 free + 20 MiB more: 80 MiB mapped
        { free: "a" }, // [free 50 | b 30]
        // 50 MiB cached but 70 needed: 80 + 70 > 120 allowed. release_cached_blocks unmaps the two
        // whole pages inside the free 50 MiB (40 MiB), then the retry maps what is missing
        { alloc: 70 * MiB, name: "c" },
      ],
      conf,
      { capacityBytes: 120 * MiB },
    );
    expect(events(r)).toEqual([
      [A.SegmentMap, 60 * MiB],
      [A.SegmentMap, 20 * MiB],
      [A.SegmentUnmap, 40 * MiB],
      [A.SegmentMap, 80 * MiB],
    ]);
    expect(r.allocRetries).toBe(1);
    expect(r.ooms).toBe(0);
  });
});
