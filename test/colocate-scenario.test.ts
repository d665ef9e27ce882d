import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { readTrace, parseFingerprints, fingerprintDocument, chunkDigest, TraceError } from "@lakebed/traces";
import { parseScenario, ScenarioError } from "../packages/api/src/colocate/scenario.js";
import { segmentTrace } from "../packages/api/src/colocate/trace-segments.js";
import { runStrategy, STRATEGIES } from "../packages/api/src/colocate/colocate-engine.js";
import { joinParameters } from "../packages/api/src/colocate/parameter-chunks.js";
import { planReserve } from "../packages/api/src/colocate/reserve-plan.js";
import { readFingerprints, accessRecordBeside, withAccessRecord } from "@lakebed/traces";
import { repoRoot } from "./support/shared-traces.js";
import { lakebed, tempFile } from "./support/cli.js";

/**
 * `lakebed colocate`: the scenario file's one-line errors, the steps and requests found in the
 * recorded traces, the fingerprint format (the same digests as Python's hashlib), the engine with
 * the pool's invariants checked as it runs (and a pool that skips the zero-fill caught in it), and
 * the command line.
 */
const access = join(repoRoot, "test/fixtures/access");
const inferTrace = join(access, "llama_infer.def.pickle.gz");
const loraTrace = join(access, "llama_lora.exp.pickle.gz");

const good = {
  capacity: "2GiB",
  durationS: 5,
  tenants: [
    { name: "t", trace: loraTrace, tags: ["training"], policy: "expandable" },
    { name: "i", trace: inferTrace, tags: ["inference"], arrivals: { poissonPerS: 1 }, seed: 5 },
  ],
};

describe("colocate scenarios", () => {
  it("says what is wrong with a scenario in one line: the file, the JSON path, what was expected", () => {
    const cases: [unknown, string][] = [
      [{ ...good, capacity: "2 gallons" }, "s.json: $.capacity: expected a size such as 16GiB or 17179869184, got '2 gallons'"],
      [{ ...good, durationS: -1 }, "s.json: $.durationS: Too small: expected number to be >0"],
      [{ ...good, tenants: [{ ...good.tenants[1], arrivals: undefined }] }, "s.json: $.tenants[0].arrivals: an inference tenant needs arrivals"],
      [{ ...good, tenants: [{ ...good.tenants[0], tags: ["serving"] }] }, "s.json: $.tenants[0].tags[0]: Invalid option"],
      [{ ...good, tenants: [good.tenants[0], { ...good.tenants[1], name: "t" }] }, "s.json: $.tenants[1].name: 't' names two tenants"],
      [{ ...good, tenants: [{ ...good.tenants[0], policy: "magic" }] }, "s.json: $.tenants[0].policy: Invalid option"],
      [{ ...good, extra: 1 }, "s.json: $: Unrecognized key"],
      [{ ...good, tenants: [{ ...good.tenants[0], arrivals: { poissonPerS: 1 } }] }, "s.json: $.tenants[0].arrivals: a training tenant runs its steps back to back"],
    ];
    for (const [json, message] of cases) {
      let error: unknown;
      try {
        parseScenario(json, "s.json");
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ScenarioError);
      expect((error as Error).message).toContain(message);
      expect((error as Error).message).not.toContain("\n");
    }
    const s = parseScenario(good, "/tmp/s.json");
    expect(s.capacityBytes).toBe(2 * 2 ** 30);
    expect(s.tenants.map((t) => [t.kind, t.policy, t.arrivalsPerS])).toEqual([["training", "expandable", 0], ["inference", "caching", 1]]);
  });

  it("finds gpt2_train's four steps and llama_infer's three requests in their live bytes", async () => {
    const train = segmentTrace((await readTrace(join(access, "gpt2_train.def.pickle.gz"))).devices[0]);
    expect(train.segments.length).toBe(4);
    const infer = segmentTrace((await readTrace(inferTrace)).devices[0]);
    expect(infer.segments.length).toBe(3);
    for (const s of [...train.segments, ...infer.segments]) {
      // INV-SEG-1: every block allocated once and freed once, after its alloc
      const state = new Int8Array(s.ops.blocks);
      for (let k = 0; k < s.ops.length; k++) {
        const b = s.ops.block[k];
        expect(state[b]).toBe(s.ops.isAlloc[k] ? 0 : 1);
        state[b] = s.ops.isAlloc[k] ? 1 : 2;
      }
      expect(state.every((x) => x === 2)).toBe(true);
    }
    // the prologue is what the program keeps: llama_infer's weights (and a cuBLAS workspace)
    let kept = 0;
    for (let k = 0; k < infer.prologue.length; k++) kept += infer.prologue.isAlloc[k] ? infer.prologue.bytes[k] : 0;
    expect(kept).toBeGreaterThan(300 * 2 ** 20);
    expect(kept).toBeLessThan(360 * 2 ** 20);
  });
});

describe("the reserve plan (Sirius' W)", () => {
  it("takes the least W whose estimated share within the SLO reaches the target", () => {
    // two models of 1 GiB at 0.1 req/s and T_idle 5 s: a request finds its model evicted with
    // probability exp(-0.5) = 0.607; the reserve holds it with probability W / 2 GiB
    const models = [{ bytes: 2 ** 30, ratePerS: 0.1 }, { bytes: 2 ** 30, ratePerS: 0.1 }];
    const plan = planReserve(models, 5, true, 0.9);
    expect(plan.coldStartShare).toBeCloseTo(Math.exp(-0.5), 12);
    expect(plan.sloShareWithoutReserve).toBeCloseTo(1 - Math.exp(-0.5), 12);
    // 1 - 0.607 (1 - W / 2 GiB) >= 0.9  <=>  W >= 2 GiB (1 - 0.1 / 0.607) = 1.671 GiB, in 2 MiB chunks
    const w = Math.ceil((2 * 2 ** 30 * (1 - 0.1 / Math.exp(-0.5))) / 2 ** 21) * 2 ** 21;
    expect(plan.watermarkBytes).toBe(w);
    expect(plan.estimatedSloShare).toBeGreaterThanOrEqual(0.9);
    // the least such W: one chunk less misses the target
    expect(1 - Math.exp(-0.5) * (1 - (w - 2 ** 21) / 2 ** 31)).toBeLessThan(0.9);
    // when an adjustment still meets the SLO, no reserve is needed
    expect(planReserve(models, 5, false, 0.99).watermarkBytes).toBe(0);
  });
});

describe("fingerprints", () => {
  it("hashes a window as Python's hashlib.blake2b does, and reads back what it writes", () => {
    // python3 -c "import hashlib; print(hashlib.blake2b(b'abc').hexdigest())"
    expect(chunkDigest(new TextEncoder().encode("abc"))).toBe(
      "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
    );
    const bytes = new Uint8Array(5 * 2 ** 20).map((_, i) => i % 251);
    const doc = fingerprintDocument([{ address: 4096, bytes: bytes.length, names: ["w"], read: (o, n) => bytes.subarray(o, o + n) }]);
    const fp = parseFingerprints(doc, "w.fingerprints.json");
    expect(fp.storages[0].chunks.length).toBe(3);
    expect(fp.storages[0].chunks[0]).toBe(chunkDigest(bytes.subarray(0, 2 ** 21)));
  });

  it("refuses a bad document in one line naming the JSON path", () => {
    const doc = fingerprintDocument([{ address: 0, bytes: 10, names: [], read: () => new Uint8Array(10) }]) as any;
    const bad = (mutate: (d: any) => void) => {
      const d = JSON.parse(JSON.stringify(doc));
      mutate(d);
      try {
        parseFingerprints(d, "f.json");
      } catch (e) {
        expect(e).toBeInstanceOf(TraceError);
        return (e as Error).message;
      }
      return "accepted";
    };
    expect(bad((d) => (d.hash = "md5"))).toBe('f.json: $.hash: expected "blake2b-512"');
    expect(bad((d) => d.storages[0].chunks.push(d.storages[0].chunks[0]))).toBe("f.json: $.storages[0].chunks: expected 1 digests for 10 bytes, got 2");
    expect(bad((d) => (d.storages[0].chunks[0] = "zz"))).toBe("f.json: $.storages[0].chunks[0]: expected 128 lowercase hex digits (BLAKE2b-512)");
    expect(bad((d) => d.storages.push({ ...d.storages[0], address: 5 }))).toBe("f.json: $.storages: storages at 0 and 5 overlap");
  });
});

describe("the colocate engine", () => {
  const scenario = parseScenario({ ...good, capacity: "1792MiB" }, "/tmp/s.json");
  let traces: ReturnType<typeof segmentTrace>[];
  const load = async () => (traces ??= [segmentTrace((await readTrace(loraTrace)).devices[0]), segmentTrace((await readTrace(inferTrace)).devices[0])]);

  it("keeps the pool's invariants under every strategy, and hands training's memory over under Sirius' rule", async () => {
    await load();
    for (const strategy of STRATEGIES) {
      const run = runStrategy(scenario, traces, strategy, { watermarkBytes: 0, checkEvery: 2000 });
      expect(run.requests).toBeGreaterThan(0);
      if (strategy === "handover") {
        expect(run.handovers.length).toBeGreaterThan(0);
        expect(run.zeroFills).toBeGreaterThan(0);
        expect(run.trainingGaveUpBytes).toBeGreaterThan(0);
      }
      if (strategy === "sp-50") expect(run.trainingStepsLost).toBeGreaterThan(0); // llama_lora needs more than half of 1.75 GiB
    }
  });

  it("hands memory over only to a tenant above the lender in priority", async () => {
    await load();
    const equal = parseScenario({ ...good, capacity: "1792MiB", tenants: [good.tenants[0], { ...good.tenants[1], priority: 0 }] }, "/tmp/s.json");
    const run = runStrategy(equal, traces, "handover", { watermarkBytes: 0 });
    expect(run.handovers).toEqual([]);
    expect(runStrategy(scenario, traces, "handover", { watermarkBytes: 0 }).handovers.length).toBeGreaterThan(0);
  });

  it("catches a pool that skips the zero-fill: a tenant maps another's data", async () => {
    await load();
    expect(() => runStrategy(scenario, traces, "handover", { watermarkBytes: 0, fault: "skip-zero-fill" })).toThrow(/INV-POOL-4: tenant \d maps chunk \d+, which holds tenant \d's data/);
  });
});

describe("dedup in the interleaved replay", () => {
  const fixtures = join(repoRoot, "test/fixtures/scenarios/dedup");

  it("joins the fingerprints to the kept blocks, leaves the blocks the optimizer writes private, and shares the rest", async () => {
    const withAccess = async (f: string) => withAccessRecord(await readTrace(f), accessRecordBeside(f)!).devices[0];
    const lora = await withAccess(loraTrace);
    const lj = joinParameters(lora, segmentTrace(lora).prologue, readFingerprints(join(fixtures, "llama_lora_a.fingerprints.json")));
    // 75 base storages and 64 adapters, every one a block the trace keeps; AdamW mutates the adapters
    expect([lj.storages, lj.joined, lj.written]).toEqual([139, 139, 64]);

    const infer = await withAccess(inferTrace);
    const segmented = segmentTrace(infer);
    const ij = joinParameters(infer, segmented.prologue, readFingerprints(join(fixtures, "llama_infer.fingerprints.json")));
    expect([ij.joined, ij.written]).toEqual([75, 0]);
    const two = parseScenario({ capacity: "2GiB", durationS: 3, tenants: [0, 1].map((k) => ({ name: `i${k}`, trace: inferTrace, tags: ["inference"], arrivals: { poissonPerS: 1 }, seed: k })) }, "/tmp/d.json");
    const plain = runStrategy(two, [segmented, segmented], "handover", { watermarkBytes: 0, checkEvery: 1000 });
    const dedup = runStrategy(two, [segmented, segmented], "handover", { watermarkBytes: 0, checkEvery: 1000, parameters: [ij, ij] });
    expect(dedup.sharedChunks).toBe(126);
    // the second process maps the first one's 126 chunks instead of its own
    expect(plain.peakUsedBytes - dedup.peakUsedBytes).toBeGreaterThanOrEqual(100 * 2 ** 21);
  });
});

describe("lakebed colocate", () => {
  it("prints one JSON document with every strategy, and a bad scenario as one line with status 1", () => {
    const file = tempFile("s.json", JSON.stringify({ ...good, capacity: "1792MiB", durationS: 1 }));
    const r = lakebed(["colocate", file, "--json"], 120_000);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.runs.map((x: { strategy: string }) => x.strategy)).toEqual([...STRATEGIES]);
    expect(out.tenants.map((t: { segments: number }) => t.segments)).toEqual([4, 3]);
    const bad = lakebed(["colocate", tempFile("b.json", JSON.stringify({ ...good, tenants: [{ ...good.tenants[0], trace: "missing.pickle.gz" }] }))]);
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    expect(bad.stderr).toMatch(/b\.json: \$\.tenants\[0\]\.trace: .*missing\.pickle\.gz/);
  });
});
