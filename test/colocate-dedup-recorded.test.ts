import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readAccessTrace, readFingerprints, readTrace } from "@lakebed/traces";
import { replayTrace, verifyTrace } from "@lakebed/api";
import { segmentTrace } from "../packages/api/src/colocate/trace-segments.js";
import { joinParameters } from "../packages/api/src/colocate/parameter-chunks.js";
import { dedupFigure, dedupSweep } from "../packages/api/src/colocate/dedup-figures.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * The dedup recordings of test/fixtures/dedup (scripts/record-dedup on an H200): a 1.1B Llama in
 * bf16 built with one seed in every process, serving requests (infer) or fine-tuned with LoRA
 * (lora_a, lora_b). The trace replays to PyTorch's own statistics; two processes that built the
 * model hold the same bytes (their fingerprints agree window for window); every fingerprinted
 * storage joins a block the trace keeps, the optimizer's adapters left private; and the dedup
 * figures the docs give (N = 1..8 processes, two fine-tunes) follow from them.
 */
const dir = join(repoRoot, "test/fixtures/dedup");
const MiB = 2 ** 20;

async function recorded(name: string) {
  const trace = await readAccessTrace(join(dir, `${name}.pickle.gz`), join(dir, `${name}.access.json.gz`));
  const meta = JSON.parse(readFileSync(join(dir, `${name}.stats.json`), "utf8"));
  return { trace, meta, fingerprints: readFingerprints(join(dir, `${name}.fingerprints.json`)) };
}

describe("the 1.1B Llama's dedup recordings", () => {
  it("infer: verifies against PyTorch's segment events, replays to its statistics, and two processes hold the same weights", async () => {
    const { trace, meta, fingerprints } = await recorded("llama1b_infer.def");
    const verified = verifyTrace(trace);
    expect(verified.match).toBe(true);
    expect(verified.devices.map((d) => [d.complete, d.firstMismatch, d.finalStateDifference])).toEqual([[true, null, null]]);
    const [device] = replayTrace(trace).document.devices;
    const stats = meta.stats as Record<string, number>;
    expect(Object.fromEntries(Object.keys(stats).map((k) => [k, device.stats[k]]))).toEqual(stats);
    expect(meta.parameters).toBe(1_100_048_384);
    expect(stats["reserved_bytes.all.peak"]).toBe(2274 * MiB);

    const other = readFingerprints(join(dir, "llama1b_infer_1.fingerprints.json"));
    expect(other.storages.map((s) => s.chunks)).toEqual(fingerprints.storages.map((s) => s.chunks));
    const d = trace.devices[0];
    const join1 = joinParameters(d, segmentTrace(d).prologue, fingerprints);
    expect([join1.storages, join1.joined, join1.written]).toEqual([203, 203, 0]);
    const shared = [...join1.byPrologueOp.values()].reduce((s, b) => s + b.digests.length, 0);
    expect(shared).toBe(1026); // 2,052 MiB of the 2,098 MiB of weights: k/v projections (1 MiB) and norms stay private

    // N processes serving it: the weights' whole chunks once, the rest of each process's peak its own
    const sweep = dedupSweep({ name: "infer", aloneBytes: stats["reserved_bytes.all.peak"], fingerprints });
    expect(sweep.map((f) => f.withBytes / MiB)).toEqual([2274, 2496, 2718, 2940, 3162, 3384, 3606, 3828]);
    expect(sweep[5].ratio).toBeCloseTo(0.248, 3);
    expect(sweep[5].ratio).toBeLessThanOrEqual(0.4);
  });

  it("infer: the segment finder finds the three requests record.py served, though the first holds its input into the second", async () => {
    // record.py: for (batch, tokens) in [(1, 256), (2, 96), (1, 384)]: ids = randint(...), a prompt,
    // 32 tokens. `ids` is freed when the next request rebinds it, after the new one is allocated,
    // so the live bytes never come back to rest between the first two requests (they did between
    // the second and the third only because the third's ids are never freed: they end up kept)
    const d = (await readTrace(join(dir, "llama1b_infer.def.pickle.gz"))).devices[0];
    const { prologue, segments } = segmentTrace(d);
    expect(segments).toHaveLength(3);
    const firstAlloc = (k: number) => segments[k].ops.bytes[segments[k].ops.isAlloc.indexOf(1)];
    // each request starts with its input ids (int64): 1 x 256, then 2 x 96
    expect([firstAlloc(0), firstAlloc(1)]).toEqual([1 * 256 * 8, 2 * 96 * 8]);
    // the third's (1 x 384) is never freed: a kept block, in the prologue
    expect(firstAlloc(2)).not.toBe(1 * 384 * 8);
    expect([...prologue.bytes].filter((b) => b === 1 * 384 * 8)).toHaveLength(1);
    // the same operators in each (a prompt, then 32 tokens): as many operations, but the third's input
    expect(segments.map((g) => g.ops.length)).toEqual([62548, 62548, 62546]);
    // the pieces cover the run they were cut from: no event of a request is lost
    expect(segments[1].firstEvent).toBe(segments[0].lastEvent + 1);
    expect(segments.map((g) => Math.round((g.peakAboveRestBytes / MiB) * 10) / 10)).toEqual([22.1, 16.6, 33.2]);
    expect(segments.map((g) => Math.round(g.durationUs / 1e5) / 10)).toEqual([5.7, 5, 2.9]);
  });

  it("two LoRA fine-tunes of the one base: the base's chunks shared, the adapters the optimizer writes private", async () => {
    const a = await recorded("llama1b_lora_a.def");
    const b = await recorded("llama1b_lora_b.def");
    const joins = [a, b].map(({ trace, fingerprints }) => joinParameters(trace.devices[0], segmentTrace(trace.devices[0]).prologue, fingerprints));
    // 203 base storages and 176 adapters (22 layers x q/k/v/o x A/B); AdamW mutates the adapters
    expect(joins.map((j) => [j.storages, j.joined, j.written])).toEqual([
      [379, 379, 176],
      [379, 379, 176],
    ]);
    const base = (f: typeof a.fingerprints) => f.storages.filter((s) => !s.names.some((n) => n.includes("lora_"))).map((s) => s.chunks);
    expect(base(b.fingerprints)).toEqual(base(a.fingerprints));
    const adapters = (f: typeof a.fingerprints) => f.storages.filter((s) => s.names.some((n) => n.includes("lora_A"))).map((s) => s.chunks[0]);
    expect(adapters(a.fingerprints).some((digest, i) => digest === adapters(b.fingerprints)[i])).toBe(false);
    const figure = dedupFigure([a, b].map(({ meta, fingerprints }, i) => ({ name: `lora-${i}`, aloneBytes: meta.stats["reserved_bytes.all.peak"], fingerprints })));
    expect([figure.withoutBytes / MiB, figure.withBytes / MiB, figure.sharedChunks]).toEqual([5628, 3576, 1026]);
  });
});
