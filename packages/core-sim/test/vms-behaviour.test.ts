import { describe, expect, it } from "vitest";
import { Action } from "@lakebed/traces";
import { parseAllocConf, replayDevice, type DeviceReplayResult } from "@lakebed/core-sim";
import { MiB, buildTrace, type Op } from "./support/traces.js";

/**
 * The vms policy (GMLake's stitching) on hand-built traces whose outcome follows from GMLake's
 * rules (../shared/reference/gmlake-glake.md, sections 2.4-2.9), worked out in the comments.
 * Requests of 10 MiB or more get a segment of their own size, so `alloc 12 MiB` makes a 12 MiB
 * segment (6 chunks). Every replay checks isValid after every event.
 */
function replay(ops: Op[], conf = "", extra: { capacityBytes?: number; streams?: number } = {}): DeviceReplayResult {
  return replayDevice(buildTrace(ops, extra.streams ?? 1), {
    policy: "vms",
    conf: parseAllocConf(conf),
    capacityBytes: extra.capacityBytes,
    checkEvery: 1,
  });
}

const STITCH_ANY = "fragLimit:2097152";
const calls = (r: DeviceReplayResult, name: string) => r.driverCalls[name] ?? 0;
const segmentSizes = (r: DeviceReplayResult, action: number) => r.segmentEvents.filter((e) => e.action === action).map((e) => e.size / MiB);

/** Two free 12 MiB blocks in two segments, then a 24 MiB request. */
const twoFragmentsThen24: Op[] = [
  { alloc: 12 * MiB, name: "a" },
  { alloc: 12 * MiB, name: "b" },
  { free: "a" },
  { free: "b" },
  { alloc: 24 * MiB, name: "s" },
];

describe("vms: stitching", () => {
  it("stitches free blocks of several segments into one range instead of creating memory", () => {
    const r = replay(twoFragmentsThen24, STITCH_ANY);
    expect(segmentSizes(r, Action.SegmentAlloc)).toEqual([12, 12]);
    expect(r.policyCounters.stitches).toBe(1);
    expect(r.peakReservedBytes).toBe(24 * MiB);
    // 12 chunks created and mapped once in their segments, mapped again in the stitched range
    expect(calls(r, "memCreate")).toBe(12);
    expect(calls(r, "map")).toBe(24);
    expect(calls(r, "addressReserve")).toBe(3);
    expect(r.stats["allocated_bytes.large_pool.current"]).toBe(24 * MiB);
    // the lent pBlocks show as allocated in their segments; the view is no segment of its own
    expect(r.finalSegments.map((s) => s.blocks.map((b) => b.state))).toEqual([["allocated"], ["allocated"]]);
  });

  it("does not stitch below fragLimit (GMLake's default 512 MiB): a new segment instead", () => {
    const r = replay(twoFragmentsThen24);
    expect(r.policyCounters.stitches).toBe(0);
    expect(segmentSizes(r, Action.SegmentAlloc)).toEqual([12, 12, 24]);
    expect(r.peakReservedBytes).toBe(48 * MiB);
  });

  it("with defragLevel 1 stitches only once new memory was refused", () => {
    const unlimited = replay(twoFragmentsThen24, `${STITCH_ANY},defragLevel:1`);
    expect(unlimited.policyCounters.stitches).toBe(0);
    expect(segmentSizes(unlimited, Action.SegmentAlloc)).toEqual([12, 12, 24]);
    const capped = replay(twoFragmentsThen24, `${STITCH_ANY},defragLevel:1`, { capacityBytes: 30 * MiB });
    expect(capped.policyCounters.stitches).toBe(1);
    expect(capped.ooms).toBe(0);
    expect(segmentSizes(capped, Action.SegmentAlloc)).toEqual([12, 12]);
  });

  it("splits off the overshoot of the last (smallest) block and leaves it free", () => {
    const r = replay(
      [
        { alloc: 14 * MiB, name: "a" },
        { alloc: 12 * MiB, name: "b" },
        { free: "a" },
        { free: "b" },
        { alloc: 20 * MiB, name: "s" }, // largest first: 14 whole + the first 6 of 12; 6 MiB stay free
      ],
      STITCH_ANY,
    );
    expect(r.policyCounters.stitches).toBe(1);
    const [a, b] = [...r.finalSegments].sort((x, y) => y.totalSize - x.totalSize);
    expect(a.blocks.map((x) => [x.size / MiB, x.state])).toEqual([[14, "allocated"]]);
    expect(b.blocks.map((x) => [x.size / MiB, x.state])).toEqual([
      [6, "allocated"],
      [6, "inactive"],
    ]);
  });

  it("never stitches blocks of another stream", () => {
    const r = replay(
      [
        { alloc: 12 * MiB, name: "a", stream: 0 },
        { alloc: 12 * MiB, name: "b", stream: 1 },
        { free: "a" },
        { free: "b" },
        { alloc: 24 * MiB, name: "s", stream: 0 },
      ],
      STITCH_ANY,
      { streams: 2 },
    );
    expect(r.policyCounters.stitches).toBe(0);
    expect(segmentSizes(r, Action.SegmentAlloc)).toEqual([12, 12, 24]);
  });
});

describe("vms: the stitched view after its free", () => {
  it("keeps both views: the blocks return to the pool, the stitched range stays mapped for reuse", () => {
    const r = replay(
      [
        ...twoFragmentsThen24,
        { free: "s" }, // the pBlocks are free again; the view is cached, all its chunks free
        { alloc: 12 * MiB, name: "p" }, // best fit takes a pBlock first: the view is fragmented now
        { free: "p" }, // its chunks are all free again: reusable
        { alloc: 24 * MiB, name: "t" }, // served by the cached view: no new range, no new mapping
      ],
      STITCH_ANY,
    );
    expect(r.policyCounters.stitches).toBe(1);
    expect(r.policyCounters.stitchReuses).toBe(1);
    expect(calls(r, "addressReserve")).toBe(3);
    expect(calls(r, "map")).toBe(24);
    expect(r.policyCounters.liveStitches).toBe(1);
  });

  it("reuses a cached view for a smaller request only within reuseLimit, claiming just its front", () => {
    const ops: Op[] = [...twoFragmentsThen24, { free: "s" }, { alloc: 14 * MiB, name: "t" }];
    // 24 <= 14 x 10: the view serves 14 MiB; its last 5 chunks stay free for others
    const reused = replay(ops, STITCH_ANY);
    expect(reused.policyCounters.stitchReuses).toBe(1);
    expect(reused.policyCounters.stitches).toBe(1);
    expect(reused.stats["allocated_bytes.large_pool.current"]).toBe(14 * MiB);
    const blocks = reused.finalSegments.flatMap((s) => s.blocks.map((b) => `${b.size / MiB} ${b.state}`));
    expect(blocks.sort()).toEqual(["10 inactive", "12 allocated", "2 allocated"]);
    // 24 > 14 x 1: not reusable; a second view is stitched from the free blocks (12 + 2)
    const limited = replay(ops, `${STITCH_ANY},reuseLimit:1`);
    expect(limited.policyCounters.stitchReuses).toBe(0);
    expect(limited.policyCounters.stitches).toBe(2);
    expect(calls(limited, "addressReserve")).toBe(4);
  });
});

describe("vms: garbage collection of stitched views", () => {
  // Six segments a..f (12, 12, 14, 14, 16, 16 MiB). Views: V1 = a+b (24), V2 = c+d (28),
  // V3 = e+f (32). With autoGC at 0.06 GiB (61.4 MiB), making V3 brings the views to 84 MiB:
  // GC drops cached views oldest release first until at most 61.4 MiB remain: V1 only.
  const ops: Op[] = [
    { alloc: 12 * MiB, name: "a" },
    { alloc: 12 * MiB, name: "b" },
    { alloc: 14 * MiB, name: "c" },
    { alloc: 14 * MiB, name: "d" },
    { alloc: 16 * MiB, name: "e" },
    { alloc: 16 * MiB, name: "f" },
    { free: "a" },
    { free: "b" },
    { alloc: 24 * MiB, name: "v1" },
    { free: "v1" },
    { free: "c" },
    { free: "d" },
    { alloc: 28 * MiB, name: "v2" }, // no block of 28; V1 is too small; largest first: c + d
    { free: "v2" },
    { free: "e" },
    { free: "f" },
    { alloc: 32 * MiB, name: "v3" }, // e + f; then autoGC drops V1 (released before V2)
    { alloc: 28 * MiB, name: "g" }, // V2 survived: reused, no new range
    { alloc: 24 * MiB, name: "h" }, // V1 is gone: a + b stitched anew
  ];

  it("collects the oldest cached view first, down to the autoGC limit", () => {
    const r = replay(ops, `${STITCH_ANY},autoGC:0.06`);
    expect(r.policyCounters.stitchesCollected).toBe(1);
    expect(r.policyCounters.stitchReuses).toBe(1);
    expect(r.policyCounters.stitches).toBe(4);
    expect(calls(r, "addressReserve")).toBe(6 + 4);
    expect(calls(r, "addressFree")).toBe(1);
  });

  it("keeps every view under GMLake's default autoGC (1000 GiB)", () => {
    const r = replay(ops, STITCH_ANY);
    expect(r.policyCounters.stitchesCollected).toBe(0);
    // V1 still cached: h reuses it
    expect(r.policyCounters.stitchReuses).toBe(2);
    expect(r.policyCounters.stitches).toBe(3);
  });
});

/** Three free 12 MiB segments. */
const threeFreeSegments: Op[] = [
  { alloc: 12 * MiB, name: "a" },
  { alloc: 12 * MiB, name: "b" },
  { alloc: 12 * MiB, name: "c" },
  { free: "a" },
  { free: "b" },
  { free: "c" },
];

describe("vms: giving memory back", () => {
  it("releases free whole segments when a new one would exceed the capacity, then retries", () => {
    const r = replay(
      [...threeFreeSegments, { alloc: 30 * MiB, name: "d" }], // 36 + 30 > 40: release the three cached segments first
      "",
      { capacityBytes: 40 * MiB },
    );
    expect(r.ooms).toBe(0);
    expect(segmentSizes(r, Action.SegmentAlloc)).toEqual([12, 12, 12, 30]);
    expect(segmentSizes(r, Action.SegmentFree)).toEqual([12, 12, 12]);
    expect(r.stats["reserved_bytes.all.current"]).toBe(30 * MiB);
    expect(r.allocRetries).toBe(1);
  });

  it("truncates a view in use whose free tail lies in a released segment, and drops it when freed", () => {
    const ops: Op[] = [
      ...threeFreeSegments,
      { alloc: 36 * MiB, name: "s" }, // all three stitched
      { free: "s" },
      { alloc: 14 * MiB, name: "t" }, // the view's first 7 chunks: one whole segment and one chunk of another
      { segmentFree: 0, bytes: 12 * MiB }, // empty_cache: the third segment, wholly free, goes
    ];
    const during = replay(ops, STITCH_ANY);
    expect(during.emptyCacheCalls).toBe(1);
    expect(segmentSizes(during, Action.SegmentFree)).toEqual([12]);
    expect(during.policyCounters.liveStitches).toBe(1);
    const after = replay([...ops, { free: "t" }], STITCH_ANY);
    expect(after.policyCounters.liveStitches).toBe(0);
    expect(calls(after, "addressFree")).toBe(2);
  });

  it("on empty_cache drops cached views and releases every free segment", () => {
    const r = replay([...twoFragmentsThen24, { free: "s" }, { segmentFree: 0, bytes: 12 * MiB }], STITCH_ANY);
    expect(r.policyCounters.stitchesCollected).toBe(1);
    expect(r.policyCounters.liveStitches).toBe(0);
    expect(segmentSizes(r, Action.SegmentFree)).toEqual([12, 12]);
    expect(r.stats["reserved_bytes.all.current"]).toBe(0);
  });

  it("with reAlloc creates only the shortfall and stitches it with the free blocks", () => {
    const r = replay(
      [
        { alloc: 12 * MiB, name: "a" },
        { free: "a" },
        { alloc: 24 * MiB, name: "s" }, // 12 MiB free: a 12 MiB segment for the rest, stitched
      ],
      `${STITCH_ANY},reAlloc:1`,
    );
    expect(r.policyCounters.reAllocs).toBe(1);
    expect(r.policyCounters.stitches).toBe(1);
    expect(segmentSizes(r, Action.SegmentAlloc)).toEqual([12, 12]);
    expect(r.peakReservedBytes).toBe(24 * MiB);
  });

  it("keeps PyTorch's small pool: 2 MiB cudaMalloc segments for requests up to 1 MiB", () => {
    const r = replay([{ alloc: 1000, name: "a" }, { alloc: 512 * 1024, name: "b" }], STITCH_ANY);
    expect(calls(r, "malloc")).toBe(1);
    expect(r.finalSegments.map((s) => [s.pool, s.totalSize])).toEqual([["small", 2 * MiB]]);
  });
});
