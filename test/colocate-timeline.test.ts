import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { Action, checkDeviceTrace, readTrace, readFingerprints, accessRecordBeside, withAccessRecord, type DeviceTrace } from "@lakebed/traces";
import { defaultAllocConf, replayDevice } from "@lakebed/core-sim";
import { parseScenario } from "../packages/api/src/colocate/scenario.js";
import { segmentTrace } from "../packages/api/src/colocate/trace-segments.js";
import { joinParameters } from "../packages/api/src/colocate/parameter-chunks.js";
import { tenantTimeline } from "../packages/api/src/colocate/tenant-timeline.js";
import { poissonArrivals, seededRandom } from "../packages/api/src/colocate/seeded-random.js";
import { CHUNK_BYTES } from "../packages/api/src/colocate/shared-pool.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * A tenant's timeline (tenant-timeline.ts): what a live tenant process replays through its policy.
 * It is a valid complete trace, holds the prologue and the requests (or steps) the simulator's
 * TenantRun would run for the tenant, and, with dedup, exactly its whole shared windows less.
 */
const access = join(repoRoot, "test/fixtures/access");
const inferTrace = join(access, "llama_infer.def.pickle.gz");
const trainTrace = join(access, "gpt2_train.def.pickle.gz");

const allocBytes = (t: DeviceTrace) => {
  let s = 0;
  for (let i = 0; i < t.events.length; i++) if (t.events.action[i] === Action.Alloc) s += t.events.size[i];
  return s;
};

/** every block allocated once, freed at most once after it (FreeRequested then FreeCompleted), times in order */
function checkFrees(t: DeviceTrace): void {
  const e = t.events;
  const live = new Set<number>();
  for (let i = 0; i < e.length; i++) {
    if (i > 0) expect(e.timeUs[i]).toBeGreaterThanOrEqual(e.timeUs[i - 1]);
    if (e.action[i] === Action.Alloc) live.add(e.blockId[i]);
    else if (e.action[i] === Action.FreeRequested) {
      expect(live.has(e.blockId[i])).toBe(true);
      expect([e.action[i + 1], e.blockId[i + 1]]).toEqual([Action.FreeCompleted, e.blockId[i]]);
      live.delete(e.blockId[i]);
    }
  }
}

describe("a tenant's timeline", () => {
  it("an inference tenant: its prologue, then one request per Poisson arrival, as a valid complete trace; with dedup its shared windows less", async () => {
    const device = withAccessRecord(await readTrace(inferTrace), accessRecordBeside(inferTrace)!).devices[0];
    const segmented = segmentTrace(device);
    const scenario = parseScenario({ capacity: "2GiB", durationS: 8, tenants: [{ name: "i", trace: inferTrace, tags: ["inference"], arrivals: { poissonPerS: 0.5 }, seed: 7 }] }, "/tmp/t.json");
    const spec = scenario.tenants[0];
    const alone = tenantTimeline(spec, segmented, device.streams, scenario.durationS);
    expect(checkDeviceTrace(alone.trace)).toBeNull();
    checkFrees(alone.trace);
    // the same arrivals and segment draws as TenantRun
    const arrivals = poissonArrivals(0.5, 0, 8, seededRandom(7));
    expect(alone.segmentsRun).toBe(arrivals.length);
    expect(arrivals.length).toBeGreaterThan(1);
    const drawn = arrivals.map((_, k) => segmented.segments[Math.floor(seededRandom(7 * 7919 + k)() * segmented.segments.length)]);
    const sum = (ops: { bytes: Float64Array; isAlloc: Uint8Array }) => ops.bytes.reduce((s, b, k) => s + (ops.isAlloc[k] ? b : 0), 0);
    expect(allocBytes(alone.trace)).toBe(sum(segmented.prologue) + drawn.reduce((s, g) => s + sum(g.ops), 0));
    // the first request starts at its arrival: the prologue's blocks are all live before
    const prologueAllocs = segmented.prologue.isAlloc.reduce((s, a) => s + a, 0);
    expect(alone.trace.events.timeUs[prologueAllocs]).toBeCloseTo(arrivals[0] * 1e6 + drawn[0].ops.atUs[0], 3);

    const join2 = joinParameters(device, segmented.prologue, readFingerprints(join(repoRoot, "test/fixtures/scenarios/dedup/llama_infer.fingerprints.json")));
    const dedup = tenantTimeline(spec, segmented, device.streams, scenario.durationS, join2.byPrologueOp);
    expect(checkDeviceTrace(dedup.trace)).toBeNull();
    checkFrees(dedup.trace);
    const windows = [...join2.byPrologueOp.values()].reduce((s, b) => s + b.digests.length, 0);
    expect(windows).toBe(126);
    expect(dedup.sharedBlocksOmitted + dedup.sharedBlocksCut).toBe(join2.byPrologueOp.size);
    expect(allocBytes(alone.trace) - allocBytes(dedup.trace)).toBe(windows * CHUNK_BYTES);
    // through caching on the simulator, the cut timeline needs less by about the windows
    const peak = (t: DeviceTrace) => replayDevice(t, { policy: "caching", conf: defaultAllocConf(), traceAddresses: false }).peakReservedBytes;
    const saved = peak(alone.trace) - peak(dedup.trace);
    expect(saved).toBeGreaterThan(0.9 * windows * CHUNK_BYTES);
    expect(saved).toBeLessThanOrEqual(windows * CHUNK_BYTES + 20 * 2 ** 20);
  });

  it("a training tenant: its steps back to back from its start, the first, then the others in turn, up to the scenario's end", async () => {
    const device = (await readTrace(trainTrace)).devices[0];
    const segmented = segmentTrace(device);
    const durationS = 8;
    const scenario = parseScenario({ capacity: "8GiB", durationS, tenants: [{ name: "t", trace: trainTrace, tags: ["training"], startS: 0.25 }] }, "/tmp/t.json");
    const t = tenantTimeline(scenario.tenants[0], segmented, device.streams, durationS);
    expect(checkDeviceTrace(t.trace)).toBeNull();
    checkFrees(t.trace);
    const n = segmented.segments.length;
    let at = 0.25e6;
    let steps = 0;
    while (at < durationS * 1e6) {
      const g = steps === 0 || n === 1 ? 0 : 1 + ((steps - 1) % (n - 1));
      at += segmented.segments[g].ops.atUs[segmented.segments[g].ops.length - 1];
      steps++;
    }
    expect(t.segmentsRun).toBe(steps);
    expect(steps).toBeGreaterThan(n);
    const e = t.trace.events;
    expect(e.timeUs[0]).toBe(0.25e6);
    expect(e.timeUs[e.length - 1]).toBeCloseTo(at, 3);
  });
});
