import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { openDriver, type Driver } from "@lakebed/native-cuda";
import { SharedPool, CHUNK_BYTES, type PoolFault } from "../packages/api/src/colocate/shared-pool.js";
import { DriverChunkBacking } from "../packages/api/src/colocate/live/driver-chunk-backing.js";
import { hostAvailable } from "./support/live-drivers.js";
import { join } from "node:path";
import { readTrace } from "@lakebed/traces";
import { parseScenario } from "../packages/api/src/colocate/scenario.js";
import { segmentTrace } from "../packages/api/src/colocate/trace-segments.js";
import { runStrategy } from "../packages/api/src/colocate/colocate-engine.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * The shared pool's books backed by real memory (host driver): a seeded program of claims, writes
 * and releases by three tenants, where each tenant writes its own byte into what it holds. Every
 * chunk a tenant is given must hold zeros or its own byte in its real bytes (INV-POOL-4 checked in
 * memory, not in the books); a pool that skips the zero-fill is caught by the bytes.
 */
const CHUNKS = 12;
const TENANTS = 3;
const byteOf = (tenant: number) => 0x30 + tenant;

/** release: `quarters` of the tenant's chunks, in quarters (4: all of them) */
type Op = { kind: "claim"; tenant: number; n: number } | { kind: "release"; tenant: number; quarters: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("claim" as const), tenant: fc.integer({ min: 0, max: TENANTS - 1 }), n: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant("release" as const), tenant: fc.integer({ min: 0, max: TENANTS - 1 }), quarters: fc.integer({ min: 1, max: 4 }) }),
);

const drivers: Driver[] = [];
afterEach(() => {
  for (const d of drivers.splice(0)) d.teardown();
});

/** Runs a program; the first chunk whose bytes break INV-POOL-4, or null. `stats` gets the pool's zero-fills. */
function run(backing: DriverChunkBacking, ops: Op[], fault: PoolFault, stats = { zeroFills: 0, zeroFillMicros: 0 }): string | null {
  const pool = new SharedPool(CHUNKS * CHUNK_BYTES, backing, fault);
  const held: number[][] = Array.from({ length: TENANTS }, () => []);
  for (const op of ops) {
    if (op.kind === "claim") {
      if (pool.unreservedFreeChunks < op.n) continue;
      const got = pool.claim(op.tenant, op.n);
      if (got === null) continue;
      for (const c of got) {
        const seen = [...backing.sample(c)].filter((b) => b !== 0 && b !== byteOf(op.tenant));
        if (seen.length > 0) return `tenant ${op.tenant} was given chunk ${c} holding byte 0x${seen[0].toString(16)}`;
        // the books and the bytes agree: the tenant maps it and writes its data
        pool.mapWritable(op.tenant, c);
        backing.fill(c, byteOf(op.tenant));
        pool.write(op.tenant, c);
        pool.unmap(op.tenant, c);
        held[op.tenant].push(c);
      }
    } else {
      const k = Math.ceil((op.quarters * held[op.tenant].length) / 4);
      const give = held[op.tenant].splice(0, k);
      if (give.length > 0) pool.release(op.tenant, give);
    }
  }
  stats.zeroFills = pool.zeroFills;
  stats.zeroFillMicros = pool.zeroFillMicros;
  return null;
}

describe.skipIf(!hostAvailable)("the shared pool backed by a driver's memory (host)", () => {
  it("a tenant is given chunks holding zeros or its own data, in their real bytes; zero-fills are real memsets", () => {
    const d = openDriver("host");
    drivers.push(d);
    const backing = new DriverChunkBacking(d, CHUNKS);
    // the whole pool: shareable chunks, mapped once with one setAccess
    expect(d.counters().calls.setAccess).toBe(1);
    let zeroFills = 0;
    let memsets = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
        for (let c = 0; c < CHUNKS; c++) backing.fill(c, 0); // a fresh device for each program
        const stats = { zeroFills: 0, zeroFillMicros: 0 };
        const before = d.counters().calls.memset;
        expect(run(backing, ops, "none", stats)).toBeNull();
        memsets += d.counters().calls.memset - before;
        zeroFills += stats.zeroFills;
        if (stats.zeroFills > 0) expect(stats.zeroFillMicros).toBeGreaterThan(0); // measured, not charged
      }),
      { seed: 1616, numRuns: 60 },
    );
    // the programs hand chunks between tenants, and each zero-fill is one real memset among the writes
    expect(zeroFills).toBeGreaterThan(0); // 16 with this seed
    expect(memsets).toBeGreaterThan(zeroFills);
    expect(d.isValid()).toBeNull();
  });

  it("catches a pool that skips the zero-fill, by the bytes a tenant is given", () => {
    const d = openDriver("host");
    drivers.push(d);
    const backing = new DriverChunkBacking(d, CHUNKS);
    // tenant 0 fills the pool and gives it back; tenant 1 takes it
    const ops: Op[] = [
      { kind: "claim", tenant: 0, n: CHUNKS },
      { kind: "release", tenant: 0, quarters: 4 },
      { kind: "claim", tenant: 1, n: 2 },
    ];
    const st = { zeroFills: 0, zeroFillMicros: 0 };
    expect(run(backing, ops, "none", st)).toBeNull();
    expect(st.zeroFills).toBe(2);
    for (let c = 0; c < CHUNKS; c++) backing.fill(c, 0);
    expect(run(backing, ops, "skip-zero-fill")).toMatch(/tenant 1 was given chunk \d+ holding byte 0x30/);
  });
});

describe.skipIf(!hostAvailable)("the colocate engine on a pool backed by host memory", () => {
  it("takes the same decisions as on the cost model, with every zero-fill a real, timed memset", async () => {
    const access = join(repoRoot, "test/fixtures/access");
    const scenario = parseScenario(
      {
        capacity: "1792MiB",
        durationS: 5,
        tenants: [
          { name: "t", trace: join(access, "llama_lora.exp.pickle.gz"), tags: ["training"], policy: "expandable" },
          { name: "i", trace: join(access, "llama_infer.def.pickle.gz"), tags: ["inference"], arrivals: { poissonPerS: 1 }, seed: 5 },
        ],
      },
      "/tmp/s.json",
    );
    const traces = await Promise.all(scenario.tenants.map(async (t) => segmentTrace((await readTrace(t.trace)).devices[0])));
    const modelled = runStrategy(scenario, traces, "handover", { watermarkBytes: 0 });
    const d = openDriver("host");
    drivers.push(d);
    const backing = new DriverChunkBacking(d, scenario.capacityBytes / CHUNK_BYTES);
    const memsets = d.counters().calls.memset;
    const live = runStrategy(scenario, traces, "handover", { watermarkBytes: 0, backing, checkEvery: 2000 });
    // the books decide; what backs them only changes what a zero-fill costs
    expect(live.requests).toBe(modelled.requests);
    expect(live.handovers.length).toBe(modelled.handovers.length);
    expect(live.handovers.length).toBeGreaterThan(0);
    expect(live.zeroFills).toBe(modelled.zeroFills);
    expect(live.zeroFills).toBeGreaterThan(0);
    expect(d.counters().calls.memset - memsets).toBe(live.zeroFills);
    expect(live.trainingStepsCompleted).toBe(modelled.trainingStepsCompleted);
  });
});
