import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Action, UseKind, type AccessColumns, type DeviceTrace } from "@lakebed/traces";
import { DeviceReplay, parseAllocConf, wasmModule, type CoreSimExports, type ShrinkRequest } from "@lakebed/core-sim";
import { Rng } from "./support/random.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * The tiering policy's guarantees on generated traces with use events (training-like: layers whose
 * activations are written in forward and read in backward, weights used every step, temporaries),
 * replayed under a capacity well below their peak, under both victim choices, one event at a time,
 * each guarantee judged from outside the policy:
 *
 *   G-TIER-USE       a use never touches a block on the host: every used block is mapped with access
 *                    on the simulated device when its operator runs (the replay's own count, from
 *                    the device's mappings);
 *   G-TIER-ADDRESS   a block's virtual address never changes: every piece of it the layout shows, at
 *                    every event, lies inside the range it was given at allocation;
 *   G-TIER-CAPACITY  the device's physical bytes never pass the capacity (the device's own peak);
 *   G-TIER-HOST      host bytes are accounted exactly: after every event, the host bytes the policy
 *                    reports are the pages live blocks touch that are not mapped, x 2 MiB, and none
 *                    are left once every block is freed;
 *   G-TIER-SHRINK    a serverless shrink (at an idle gap) gives back every byte the device held,
 *                    and nothing stays resident;
 *   G-TIER-EVICT     an event (with the uses at its position) moves no more pages off the device
 *                    than the pages it brings on (an operator's own, those prefetched beside them, a
 *                    new block's) lacked beyond the chunks free under the capacity before it: no
 *                    victim leaves for room that stays unused; a shrink, a failed allocation and an
 *                    unserved use excepted (the layout before and after each event).
 *
 * The deliberately broken variants of assembly/policies/tiering/broken-tiering.ts (in the test build,
 * scripts/build-test.mjs) each fail one of them, without the policy's own isValid().
 */
const MiB = 1024 * 1024;
const PAGE = 2 * MiB;

interface Generated {
  trace: DeviceTrace;
  /** the most bytes one operator's blocks take (a capacity below it cannot run the trace) */
  operatorPeakBytes: number;
  peakLiveBytes: number;
}

/** A training-like trace with use events, drawn from `seed`. */
function generate(seed: number): Generated {
  const rng = new Rng(seed, 14);
  const layers = rng.range(3, 8);
  const steps = rng.range(2, 4);
  const size = () => (rng.chance(0.3) ? rng.range(1, 64) * 512 : rng.range(1, 24 * 1024) * 1024);
  const weight = Array.from({ length: layers }, size);
  const act = Array.from({ length: layers }, size);
  const action: number[] = [];
  const sizes: number[] = [];
  const ids: number[] = [];
  const times: number[] = [];
  const ops = { name: [] as number[], position: [] as number[], startUs: [] as number[], endUs: [] as number[] };
  const uses = { position: [] as number[], blockId: [] as number[], kind: [] as number[], operator: [] as number[] };
  const live = new Map<number, number>();
  let nextId = 0;
  let now = 0;
  let peakLive = 0;
  let liveBytes = 0;
  let operatorPeak = 0;
  const event = (a: Action, id: number, bytes: number) => {
    now += rng.range(1, 40);
    action.push(a);
    sizes.push(bytes);
    ids.push(id);
    times.push(now);
  };
  const alloc = (bytes: number) => {
    const id = nextId++;
    event(Action.Alloc, id, bytes);
    live.set(id, bytes);
    liveBytes += Math.ceil(bytes / 512) * 512;
    peakLive = Math.max(peakLive, liveBytes);
    return id;
  };
  const free = (id: number) => {
    event(Action.FreeRequested, id, live.get(id)!);
    event(Action.FreeCompleted, id, live.get(id)!);
    liveBytes -= Math.ceil(live.get(id)! / 512) * 512;
    live.delete(id);
  };
  const operator = (blocks: [number, UseKind][]) => {
    const k = ops.position.length;
    const start = now + 1;
    now += rng.range(50, 2000);
    ops.name.push(0);
    ops.position.push(action.length);
    ops.startUs.push(start);
    ops.endUs.push(now);
    let bytes = 0;
    for (const [id, kind] of blocks) {
      uses.position.push(action.length);
      uses.blockId.push(id);
      uses.kind.push(kind);
      uses.operator.push(k);
      bytes += Math.ceil(live.get(id)! / PAGE + 1) * PAGE;
    }
    operatorPeak = Math.max(operatorPeak, bytes);
  };
  const weights = weight.map((w) => alloc(w));
  for (let s = 0; s < steps; s++) {
    if (s > 0) now += 50_000; // the job idles between steps: 50 ms (the serverless shrink's gap)
    const acts: number[] = [];
    const batch = alloc(size());
    operator([[batch, UseKind.Write]]);
    let input = batch;
    for (let l = 0; l < layers; l++) {
      const a = alloc(act[l]);
      operator([[weights[l], UseKind.Read], [input, UseKind.Read], [a, UseKind.Write]]);
      if (rng.chance(0.3)) {
        const tmp = alloc(size());
        operator([[a, UseKind.Read], [tmp, UseKind.Write]]);
        free(tmp);
      }
      acts.push(a);
      input = a;
    }
    const grads: number[] = [];
    for (let l = layers - 1; l >= 0; l--) {
      const g = alloc(weight[l]);
      operator([[acts[l], UseKind.Read], [weights[l], UseKind.Read], [g, UseKind.Write]]);
      free(acts[l]);
      grads.push(g);
    }
    free(batch);
    for (let l = 0; l < layers; l++) operator([[weights[l], UseKind.ReadWrite], [grads[layers - 1 - l], UseKind.Read]]);
    for (const g of grads) free(g);
  }
  for (const id of [...live.keys()]) free(id);
  const n = action.length;
  const access: AccessColumns = {
    operatorNames: ["aten.generated.default"],
    operators: {
      length: ops.position.length,
      name: Uint32Array.from(ops.name),
      position: Uint32Array.from(ops.position),
      startUs: Float64Array.from(ops.startUs),
      endUs: Float64Array.from(ops.endUs),
    },
    uses: {
      length: uses.position.length,
      position: Uint32Array.from(uses.position),
      blockId: Int32Array.from(uses.blockId),
      kind: Uint8Array.from(uses.kind),
      operator: Uint32Array.from(uses.operator),
    },
    join: { operatorsRecorded: ops.position.length, operatorsBeforeTrace: 0, resultsMatched: 0, resultsUnmatched: 0, tensorsUnresolved: 0 },
  };
  const trace: DeviceTrace = {
    device: 0,
    events: {
      length: n,
      action: Uint8Array.from(action),
      addr: new Float64Array(n),
      size: Float64Array.from(sizes),
      stream: new Uint32Array(n),
      timeUs: Float64Array.from(times),
      blockId: Int32Array.from(ids),
    },
    streams: [0n],
    initialState: [],
    finalState: [],
    complete: true,
    initialLiveBlocks: 0,
    privatePools: [],
    access,
  };
  return { trace, operatorPeakBytes: operatorPeak, peakLiveBytes: peakLive };
}

interface BrokenBuild {
  module: WebAssembly.Module;
  globals: Record<string, number>;
}

/** The first guarantee a tiering replay breaks, or null when all hold. */
function brokenGuarantee(g: Generated, victim: "online" | "belady", capacityBytes: number, build?: BrokenBuild, checkLocal = false, shrink?: ShrinkRequest): string | null {
  let replay: DeviceReplay;
  try {
    replay = new DeviceReplay(g.trace, {
      policy: "tiering",
      conf: parseAllocConf(`tiering_victim:${victim}`),
      capacityBytes,
      traceAddresses: false,
      checkLocal,
      wasmBuild: build,
      shrink,
    });
  } catch (e) {
    return `setup: ${(e as Error).message}`;
  }
  const wasm: CoreSimExports = replay.wasm;
  const e = g.trace.events;
  const range = new Map<number, [number, number]>();
  let failedBefore = 0;
  let residentBefore = new Set<number>();
  try {
    let shrinks = 0;
    for (let i = 0; i < e.action.length; i++) {
      const mappedBefore = wasm.deviceMappingCount() * PAGE;
      const freedBefore = wasm.policyCounter(13);
      const shrinksBefore = shrinks;
      const unservedBefore = wasm.policyCounter(8);
      replay.step(1);
      // a shrink before this event: it gave back everything the device held, and the host holds it
      if (wasm.policyCounter(12) > shrinks) {
        shrinks = wasm.policyCounter(12);
        if (wasm.policyCounter(13) - freedBefore !== mappedBefore) return `G-TIER-SHRINK: a shrink at event ${i} freed ${wasm.policyCounter(13) - freedBefore} of the ${mappedBefore} bytes the device held`;
        if (wasm.policyCounter(17) !== 0) return `G-TIER-SHRINK: ${wasm.policyCounter(17)} bytes stayed resident after a shrink`;
      }
      if (capacityBytes > 0 && wasm.devicePeakPhysicalBytes() > capacityBytes) return `G-TIER-CAPACITY: ${wasm.devicePeakPhysicalBytes()} device bytes at event ${i}, capacity ${capacityBytes}`;
      // the layout: resident runs, with the pieces of blocks in them
      const segments = wasm.layoutWrite();
      const blocks = wasm.layoutBlockCount();
      const buf = wasm.memory.buffer;
      const segAddress = new Float64Array(buf, wasm.layoutSegAddress(), segments);
      const segSize = new Float64Array(buf, wasm.layoutSegSize(), segments);
      const address = new Float64Array(buf, wasm.layoutBlkAddress(), blocks);
      const size = new Float64Array(buf, wasm.layoutBlkSize(), blocks);
      const state = new Uint8Array(buf, wasm.layoutBlkState(), blocks);
      const traceId = new Int32Array(buf, wasm.layoutBlkTraceId(), blocks);
      const failed = wasm.replayCounter(0); // the replay's failed allocs (assembly/replay/replay.ts)
      const paysForEvictions = shrinks === shrinksBefore && failed === failedBefore && wasm.policyCounter(8) === unservedBefore;
      if (e.action[i] === Action.Alloc && failed === failedBefore) {
        // a block is wholly on the device when it is allocated: its one piece is its range
        const id = e.blockId[i];
        const k = [...traceId.keys()].find((b) => traceId[b] === id && state[b] !== 2);
        if (k === undefined) return `G-TIER-ADDRESS: block ${id} not on the device right after its allocation (event ${i})`;
        range.set(id, [address[k], address[k] + Math.max(512, Math.ceil(e.size[i] / 512) * 512)]);
      } else if (e.action[i] === Action.FreeCompleted) {
        range.delete(e.blockId[i]);
      }
      failedBefore = failed;
      for (let b = 0; b < blocks; b++) {
        if (state[b] === 2) continue;
        const r = range.get(traceId[b]);
        if (!r || address[b] < r[0] || address[b] + size[b] > r[1]) return `G-TIER-ADDRESS: a piece of block ${traceId[b]} at ${address[b]} outside its range at event ${i}`;
      }
      // host bytes: the pages live blocks touch that are not resident
      const resident = new Set<number>();
      for (let s = 0; s < segments; s++) for (let a = segAddress[s]; a < segAddress[s] + segSize[s]; a += PAGE) resident.add(a);
      const touched = new Set<number>();
      for (const [lo, hi] of range.values()) for (let p = Math.floor(lo / PAGE) * PAGE; p < hi; p += PAGE) touched.add(p);
      let onHost = 0;
      for (const p of touched) if (!resident.has(p)) onHost++;
      const hostBytes = wasm.policyCounter(11);
      if (hostBytes !== onHost * PAGE) return `G-TIER-HOST: the policy reports ${hostBytes} host bytes, ${onHost} pages are off the device at event ${i}`;
      // evictions: pages that left the device for the host, against the pages that came on
      if (paysForEvictions) {
        let evicted = 0;
        let came = 0;
        for (const p of residentBefore) if (!resident.has(p) && touched.has(p)) evicted++;
        for (const p of resident) if (!residentBefore.has(p)) came++;
        // the pages that came on could take the chunks free under the capacity before the event
        const free = capacityBytes > 0 ? Math.floor(capacityBytes / PAGE) - residentBefore.size : Infinity;
        if (evicted > Math.max(0, came - free)) return `G-TIER-EVICT: event ${i} (with its uses) moved ${evicted} pages to the host, brought ${came} onto the device, ${free} chunks free before it`;
      }
      residentBefore = resident;
    }
    if (shrink && shrinks === 0) return "no shrink ran";
    const result = replay.result();
    const unserved = result.policyCounters.unservedUses;
    if (result.failedAllocs > 0) return `does not run at ${capacityBytes}: ${result.failedAllocs} allocations did not fit`;
    if (unserved === 0 && result.usesWithoutAccess !== 0) return `G-TIER-USE: ${result.usesWithoutAccess} uses touched a block not mapped with access`;
    if (unserved > 0) return `does not run at ${capacityBytes}: ${unserved} operators did not fit (first at ${result.policyCounters.firstUnservedPosition}, peak host ${result.policyCounters.peakHostBytes}, operator peak ${g.operatorPeakBytes}, live peak ${g.peakLiveBytes})`;
    if (result.policyCounters.hostBytes !== 0) return `G-TIER-HOST: ${result.policyCounters.hostBytes} host bytes held once every block was freed`;
    if (result.policyCounters.pagesIn === 0 && !shrink) return "nothing moved: the capacity did not bite";
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
  return null;
}

/** A capacity between what the largest operator needs and the trace's peak, drawn from the seed. */
function capacityFor(g: Generated, seed: number): number {
  const lo = g.operatorPeakBytes + 4 * PAGE;
  const hi = Math.max(lo + PAGE, g.peakLiveBytes * 0.8);
  const f = new Rng(seed, 15).unit();
  return Math.ceil((lo + (hi - lo) * f) / PAGE) * PAGE;
}

const SEEDS = Array.from({ length: 10 }, (_, k) => 1400 + k);

describe("tiering on generated traces with use events", () => {
  for (const victim of ["online", "belady"] as const) {
    it(`keeps every guarantee under ${victim}, with its own isValid() after every event too`, () => {
      let moved = 0;
      for (const seed of SEEDS) {
        const g = generate(seed);
        const capacity = capacityFor(g, seed);
        const broken = brokenGuarantee(g, victim, capacity, undefined, true);
        if (broken === "nothing moved: the capacity did not bite") continue;
        expect(broken, `seed ${seed}, capacity ${capacity}`).toBeNull();
        moved++;
      }
      // most seeds make pages move, or the properties judged little
      expect(moved).toBeGreaterThanOrEqual(SEEDS.length / 2);
    });
  }

  it("shrinks at every idle gap: everything on the device goes to the host and comes back on use (G-TIER-SHRINK), the guarantees kept", () => {
    let shrunk = 0;
    for (const seed of SEEDS) {
      const g = generate(seed);
      // no capacity: only the shrinks move pages
      expect(brokenGuarantee(g, "online", 0, undefined, true, { idleMs: 40 }), `seed ${seed}`).toBeNull();
      shrunk++;
    }
    expect(shrunk).toBe(SEEDS.length);
  });

  it("drops the pages of discardable blocks instead of copying them", () => {
    const g = generate(SEEDS[1]);
    const every = [...new Set(Array.from(g.trace.events.blockId))];
    const r = new DeviceReplay(g.trace, { policy: "tiering", conf: parseAllocConf(""), traceAddresses: false, checkLocal: true, shrink: { idleMs: 40, discardableBlockIds: every } });
    while (!r.done) r.step();
    const c = r.result().policyCounters;
    expect(c.shrinks).toBeGreaterThan(0);
    expect(c.droppedBytes).toBe(c.shrinkFreedBytes);
    expect(c.bytesOut).toBe(0);
    expect(r.result().usesWithoutAccess).toBe(0);
  });

  it("reports a capacity below what the largest operator's blocks take as not running, keeping the guarantees", () => {
    const g = generate(SEEDS[0]);
    expect(brokenGuarantee(g, "online", PAGE)).toMatch(/^does not run at/);
  });
});

// ---- the broken variants ---------------------------------------------------------------------------

const TEST_BUILD = join(repoRoot, "packages/core-sim/build/test");
const brokenWasm = join(TEST_BUILD, "core-sim-broken.wasm");
const variantsSource = readFileSync(join(repoRoot, "packages/core-sim/assembly/policies/tiering/broken-tiering.ts"), "utf8");
const VARIANTS = [...variantsSource.matchAll(/export const BROKEN_(TIERING_[A-Z0-9_]+): i32 = (\d+);/g)].map(([, name, n]) => ({ name: name.toLowerCase().replace(/_/g, "-"), variant: Number(n) }));

describe.skipIf(!existsSync(brokenWasm))("the tiering guarantees catch each broken variant (without the policy's isValid)", () => {
  it("finds the variants", () => expect(VARIANTS.length).toBeGreaterThanOrEqual(5));
  for (const v of VARIANTS) {
    it(`catches ${v.name}`, () => {
      const build = { module: wasmModule(pathToFileURL(brokenWasm)), globals: { brokenVariant: v.variant } };
      const caught: string[] = [];
      for (const seed of SEEDS) {
        for (const victim of ["online", "belady"] as const) {
          const g = generate(seed);
          // under a capacity, with a shrink at every idle gap
          const r = brokenGuarantee(g, victim, capacityFor(g, seed), build, false, { idleMs: 40 });
          if (r !== null && r.startsWith("G-TIER")) caught.push(`seed ${seed} ${victim}: ${r}`);
          else if (r !== null && r.startsWith("error: ") && /capacity|past the capacity/.test(r)) caught.push(`seed ${seed} ${victim}: G-TIER-CAPACITY (${r})`);
        }
        if (caught.length > 0) break;
      }
      console.log(`${v.name}: ${caught[0] ?? "not caught"}`);
      expect(caught.length, `${v.name} passed every seed`).toBeGreaterThan(0);
    });
  }

  // with the policy's own isValid (the local check after every event, the whole walk every 1,024);
  // a shrink that keeps a page breaks no invariant (one stays resident when the host arena is full):
  // only G-TIER-SHRINK, from outside, sees it
  for (const v of VARIANTS.filter((x) => x.name !== "tiering-shrink-keeps-a-page")) {
    it(`isValid catches ${v.name}`, () => {
      const build = { module: wasmModule(pathToFileURL(brokenWasm)), globals: { brokenVariant: v.variant } };
      let caught: string | undefined;
      for (const seed of SEEDS) {
        for (const victim of ["online", "belady"] as const) {
          const g = generate(seed);
          const r = brokenGuarantee(g, victim, capacityFor(g, seed), build, true, { idleMs: 40 });
          if (r !== null && /INV-TIER-\d+/.test(r)) caught ??= `seed ${seed} ${victim}: ${r}`;
        }
        if (caught) break;
      }
      console.log(`${v.name} (isValid): ${caught ?? "not caught"}`);
      expect(caught, `${v.name} passed every seed`).toBeDefined();
      // the prefetch's extra victim is INV-TIER-9's to catch, by the local check after its event
      if (v.name === "tiering-prefetch-evicts-extra") expect(caught).toMatch(/after trace event \d+: INV-TIER-9 broken/);
    });
  }
});
