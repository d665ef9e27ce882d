import { describe, expect, it } from "vitest";
import { haveShared, shared } from "./fixtures.js";
import { ACTION_NAMES, Action, checkDeviceTrace, readTrace, readTraceSync, type DeviceTrace, type Trace } from "@lakebed/traces";

/**
 * Every real snapshot in ../shared/traces imports, with exactly the content CPython's pickle module
 * reads from it. The expected numbers below were computed once with CPython (pickle.load, then
 * counting actions per device, distinct streams of events and segments, segments and live blocks of
 * the final state per device); Python is not used when the tests run.
 */

interface Expected {
  settings: boolean;
  annotations: number;
  complete: boolean;
  legacy?: boolean;
  /** by device ordinal: events, final segments, final live blocks, raw streams, action counts */
  devices: Record<number, [number, number, number, string[], Record<string, number>]>;
}

const EXPECTED: Record<string, Expected> = {
  "gpt2_ckpt.def.pickle.gz": { settings: true, annotations: 120, complete: true, devices: { 0: [334387, 105, 4, ["0"], { alloc: 111430, free_completed: 111426, free_requested: 111426, segment_alloc: 105 }] } },
  "gpt2_emptycache.def.pickle.gz": { settings: true, annotations: 64, complete: true, devices: { 0: [70640, 155, 3, ["0"], { alloc: 23361, free_completed: 23358, free_requested: 23358, segment_alloc: 359, segment_free: 204 }] } },
  "llama_lora.exp.pickle.gz": { settings: true, annotations: 120, complete: true, devices: { 0: [278399, 2, 2, ["0"], { alloc: 92758, free_completed: 92756, free_requested: 92756, segment_map: 129 }] } },
  "lora_capped.cap145.pickle.gz": { settings: true, annotations: 120, complete: true, devices: { 0: [278412, 120, 2, ["0"], { alloc: 92758, free_completed: 92756, free_requested: 92756, segment_alloc: 131, segment_free: 11 }] } },
  "mlp_offload.def.pickle.gz": { settings: true, annotations: 120, complete: true, devices: { 0: [26850, 63, 3, ["0"], { alloc: 8931, free_completed: 8928, free_requested: 8928, segment_alloc: 63 }] } },
  "mlp_offload.exp.pickle.gz": { settings: true, annotations: 120, complete: true, devices: { 0: [26853, 2, 3, ["0"], { alloc: 8931, free_completed: 8928, free_requested: 8928, segment_map: 66 }] } },
  "two_streams.def.pickle.gz": { settings: true, annotations: 160, complete: true, devices: { 0: [12246, 60, 15, ["0", "1088852336", "1088904832"], { alloc: 4068, free_completed: 4053, free_requested: 4065, segment_alloc: 60 }] } },
  "public/assignment2.medium_1024_inference.pickle": { settings: true, annotations: 0, complete: false, devices: { 0: [3840, 108, 223, ["0"], { alloc: 1280, free_completed: 1280, free_requested: 1280 }] } },
  "public/assignment2.medium_512_training.pickle": { settings: true, annotations: 2, complete: false, devices: { 0: [22332, 400, 885, ["0"], { alloc: 7591, free_completed: 7370, free_requested: 7370, segment_alloc: 1 }] } },
  "public/code_location.expandable_oom.pickle": {
    settings: true,
    annotations: 4,
    complete: true,
    devices: {
      0: [6445, 2, 516, ["0"], { alloc: 2434, free_completed: 1918, free_requested: 1918, segment_map: 175 }],
      1: [596, 8, 24, ["0"], { alloc: 199, free_completed: 175, free_requested: 175, oom: 1, segment_map: 40, segment_unmap: 6 }],
      2: [882, 2, 186, ["0"], { alloc: 392, free_completed: 206, free_requested: 206, segment_map: 78 }],
    },
  },
  "public/cs336.ctx128_fullstep.pickle": { settings: true, annotations: 4, complete: false, devices: { 0: [19342, 1010, 1201, ["0"], { alloc: 6771, free_completed: 5894, free_requested: 5894, segment_alloc: 783 }] } },
  "public/ftcourse.lora_2024.pickle": { settings: false, annotations: 0, complete: false, devices: { 0: [10307, 215, 802, ["0"], { alloc: 3505, free_completed: 3325, free_requested: 3325, segment_alloc: 152 }] } },
  "public/llm_inference.legacy_oom.pickle": { settings: false, annotations: 0, complete: false, legacy: true, devices: { 0: [1, 176, 460, ["0"], { snapshot: 1 }] } },
  "public/silmont.forward_bf16_128.pickle": { settings: true, annotations: 2, complete: false, devices: { 0: [2811, 43, 137, ["0"], { alloc: 937, free_completed: 937, free_requested: 937 }] } },
};

function actionCounts(d: DeviceTrace): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < d.events.length; i++) {
    const name = ACTION_NAMES[d.events.action[i] as Action];
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
}

function liveBlocks(segments: DeviceTrace["finalState"]): number {
  return segments.reduce((n, s) => n + s.blocks.filter((b) => b.state !== "inactive").length, 0);
}

describe.skipIf(!haveShared)("real snapshots in ../shared/traces", () => {
  for (const [name, expected] of Object.entries(EXPECTED)) {
    describe(name, () => {
      let trace: Trace;
      it("imports, with the same events, streams and final state CPython reads", async () => {
        trace = await readTrace(shared + name);
        expect(trace.format).toBe("pickle");
        expect(trace.gzip).toBe(name.endsWith(".gz"));
        expect(trace.legacy).toBe(expected.legacy ?? false);
        expect(trace.allocatorSettings !== null).toBe(expected.settings);
        expect(trace.annotations).toHaveLength(expected.annotations);
        const got = Object.fromEntries(
          trace.devices.map((d) => [d.device, [d.events.length, d.finalState.length, liveBlocks(d.finalState), d.streams.map(String), actionCounts(d)]]),
        );
        expect(got).toEqual(expected.devices);
      });

      it(`is ${expected.complete ? "complete (starts from an empty allocator)" : "incomplete (recorded mid-run)"}`, () => {
        for (const d of trace.devices) {
          expect(d.complete).toBe(expected.complete);
          expect(d.initialState.length === 0).toBe(expected.complete);
        }
      });

      it("holds the model's invariants, and its live blocks add up from start to end", () => {
        for (const d of trace.devices) {
          expect(checkDeviceTrace(d)).toBeNull();
          let allocs = 0;
          let completed = 0;
          for (let i = 0; i < d.events.length; i++) {
            if (d.events.action[i] === Action.Alloc) allocs++;
            if (d.events.action[i] === Action.FreeCompleted) completed++;
          }
          expect(d.initialLiveBlocks + allocs - completed).toBe(liveBlocks(d.finalState));
          const finalIds = d.finalState.flatMap((s) => s.blocks.filter((b) => b.state !== "inactive").map((b) => b.blockId));
          expect(finalIds.every((id) => id >= 0 && id < d.initialLiveBlocks + allocs)).toBe(true);
          expect(new Set(finalIds).size).toBe(finalIds.length);
        }
      });
    });
  }

  it("renumbers streams by raw value, and frees carry the id of the allocation they free", async () => {
    const trace = await readTrace(shared + "two_streams.def.pickle.gz");
    const [d] = trace.devices;
    expect(d.streams).toEqual([0n, 1088852336n, 1088904832n]);
    const allocOf = new Map<number, number>(); // id -> address
    const used = new Set<number>();
    for (let i = 0; i < d.events.length; i++) {
      const a = d.events.action[i];
      used.add(d.events.stream[i]);
      if (a === Action.Alloc) allocOf.set(d.events.blockId[i], d.events.addr[i]);
      if (a === Action.FreeRequested || a === Action.FreeCompleted) expect(allocOf.get(d.events.blockId[i])).toBe(d.events.addr[i]);
    }
    expect([...used].sort()).toEqual([0, 1, 2]);
    // record_stream makes some frees wait: 12 blocks end pending, their free_completed never came
    expect(d.finalState.flatMap((s) => s.blocks).filter((b) => b.state === "pending_free")).toHaveLength(12);
  });

  it("keeps the oom event's device_free in the addr column", async () => {
    const trace = await readTrace(shared + "public/code_location.expandable_oom.pickle");
    const d = trace.devices.find((x) => x.device === 1)!;
    const i = d.events.action.indexOf(Action.Oom);
    expect(d.events.addr[i]).toBeGreaterThan(0);
    expect(d.events.size[i]).toBeGreaterThan(5e9); // a 5.3 GB request (reference part C)
  });

  it("reads allocator settings, and leaves time NaN where the file has none", async () => {
    const exp = await readTrace(shared + "llama_lora.exp.pickle.gz");
    expect(exp.allocatorSettings).toMatchObject({ conf: "expandable_segments:True", expandableSegments: true, maxSplitSize: -1, garbageCollectionThreshold: 0 });
    expect(exp.allocatorSettings!.roundupPower2Divisions).toEqual(new Array(16).fill(0));
    expect(exp.devices[0].finalState.every((s) => s.expandable)).toBe(true);
    expect(Number.isFinite(exp.devices[0].events.timeUs[0])).toBe(true);
    const old = await readTrace(shared + "public/ftcourse.lora_2024.pickle");
    expect(old.allocatorSettings).toBeNull();
    expect(Number.isNaN(old.devices[0].events.timeUs[0])).toBe(true);
  });

  it("reads the legacy PyTorch 2.0 layout as state only: one snapshot entry, no allocations", async () => {
    const trace = await readTrace(shared + "public/llm_inference.legacy_oom.pickle");
    expect(trace.legacy).toBe(true);
    const [d] = trace.devices;
    expect(Array.from(d.events.action)).toEqual([Action.Snapshot]);
    expect(d.initialState).toEqual(d.finalState);
    expect(d.initialLiveBlocks).toBe(460);
  });

  it("readTraceSync reads what readTrace reads, and progress ends at the file size", async () => {
    const file = shared + "mlp_offload.exp.pickle.gz";
    const calls: [number, number][] = [];
    const viaAsync = await readTrace(file, { onProgress: (done, total) => calls.push([done, total]) });
    expect(readTraceSync(file)).toEqual(viaAsync);
    const [lastDone, total] = calls[calls.length - 1];
    expect(lastDone).toBe(total);
    expect(calls.every(([done], k) => k === 0 || done >= calls[k - 1][0])).toBe(true);
  });
});
