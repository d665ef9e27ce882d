import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { accessCoverage, parseTrace, readAccessTrace, traceToArrowBytes } from "@lakebed/traces";
import { replayTrace, verifyTrace } from "@lakebed/api";
import { repoRoot } from "./support/shared-traces.js";
import { lakebed } from "./support/cli.js";
import { mkdtempSync, copyFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";

/**
 * The traces in test/fixtures/access, recorded on an H200 with python/lakebed_record.py (GPT-2 with
 * and without activation checkpointing, and recorded mid-run; Llama LoRA, Llama decoding with a
 * growing KV cache, an MLP under torch.compile): each imports and reproduces PyTorch like every
 * recorded trace (from the rebuilt start state for the one that starts mid-run), and its
 * operator record joins to it completely: every result an operator allocated is found as its alloc
 * event, every tensor is a live block. Coverage says what the record cannot see: the cuBLAS
 * workspace (allocated inside the first matrix product and used by every later one) in eager runs,
 * the buffers of the compiled graph's Triton kernels under torch.compile.
 */
const dir = join(repoRoot, "test/fixtures/access");
const runs = readdirSync(dir)
  .filter((f) => f.endsWith(".pickle.gz"))
  .sort()
  .map((f) => {
    const name = f.replace(/\.pickle\.gz$/, "");
    return { name, snapshot: join(dir, f), access: join(dir, `${name}.access.json.gz`), meta: JSON.parse(readFileSync(join(dir, `${name}.stats.json`), "utf8")) };
  });
const MATRIX_PRODUCTS = /^aten\.(mm|addmm|bmm|matmul)\./;

describe("traces recorded with their operator accesses", () => {
  it("are the six runs the fixtures README lists", () => {
    expect(runs.map((r) => r.name)).toEqual(["gpt2_ckpt.def", "gpt2_midrun.def", "gpt2_train.def", "llama_infer.def", "llama_lora.exp", "mlp_compiled.def"]);
  });

  for (const run of runs) {
    it(`${run.name}: verifies, matches PyTorch's statistics, and every operator's tensors are placed`, async () => {
      const trace = await readAccessTrace(run.snapshot, run.access);
      const verified = verifyTrace(trace);
      const midRun = run.meta.mid_run === true;
      expect(verified.devices.map((d) => [d.device, d.complete, d.firstMismatch, d.finalStateDifference])).toEqual([[0, !midRun, null, null]]);
      expect(verified.match).toBe(true);
      const [device] = replayTrace(trace).document.devices;
      const stats = run.meta.stats as Record<string, number>;
      // a trace that starts mid-run holds the state at its end, not the counters and peaks before it
      const compared = Object.keys(stats).filter((k) => !midRun || k.endsWith(".current"));
      expect(Object.fromEntries(compared.map((k) => [k, device.stats[k]]))).toEqual(Object.fromEntries(compared.map((k) => [k, stats[k]])));

      const d = trace.devices[0];
      expect(d.access!.join).toEqual({ operatorsRecorded: run.meta.operators, operatorsBeforeTrace: 0, resultsMatched: expect.any(Number), resultsUnmatched: 0, tensorsUnresolved: 0 });
      const coverage = accessCoverage(d)!;
      expect(coverage.touchedShare + coverage.scratchShare + coverage.unseenShare).toBeCloseTo(1, 12);
      if (midRun) {
        // the cuBLAS workspaces were made by the step before the recording began
        expect(coverage.unseen.map((g) => g.allocatedDuring)).toEqual(["live before the trace"]);
        expect(coverage.knownShare).toBeGreaterThan(0.85);
      } else if (run.name.startsWith("mlp_compiled")) {
        // the compiled graph's buffers: allocated and used by Triton kernels, outside any operator
        expect(coverage.unseen[0].allocatedDuring).toBe("between operators");
        expect(coverage.unseenShare).toBeGreaterThan(0.2);
      } else {
        expect(coverage.unseen[0].allocatedDuring).toMatch(MATRIX_PRODUCTS);
        const outsideProducts = coverage.unseen.filter((g) => !MATRIX_PRODUCTS.test(g.allocatedDuring));
        expect(outsideProducts.reduce((s, g) => s + g.share, 0)).toBeLessThan(0.001);
        expect(coverage.knownShare).toBeGreaterThan(0.85);
      }
    });
  }

  it("the Arrow format keeps a recorded trace's use events", async () => {
    const run = runs.find((r) => r.name === "gpt2_ckpt.def")!;
    const trace = await readAccessTrace(run.snapshot, run.access);
    const back = parseTrace(traceToArrowBytes(trace), "gpt2_ckpt.arrow");
    const [a, b] = [trace.devices[0].access!, back.devices[0].access!];
    expect(b.uses.length).toBe(a.uses.length);
    expect([b.uses.position, b.uses.blockId, b.uses.kind, b.uses.operator]).toEqual([a.uses.position, a.uses.blockId, a.uses.kind, a.uses.operator]);
    expect([b.operators.name, b.operators.position, b.operators.startUs, b.operators.endUs]).toEqual([a.operators.name, a.operators.position, a.operators.startUs, a.operators.endUs]);
    expect(accessCoverage(back.devices[0])).toEqual(accessCoverage(trace.devices[0]));
  });

  it("info reports coverage when the recorder's record lies beside the snapshot; convert carries it into the Arrow file", () => {
    const json = JSON.parse(lakebed(["info", join(dir, "gpt2_train.def.pickle.gz"), "--json"]).stdout);
    const access = json.devices[0].access;
    expect(access.join.resultsUnmatched).toBe(0);
    expect(access.unseen[0].allocatedDuring).toMatch(MATRIX_PRODUCTS);
    const human = lakebed(["info", join(dir, "gpt2_train.def.pickle.gz")]);
    expect(human.stdout).toContain(`accesses, device 0: ${access.operators} operators, ${access.uses} uses (all placed); known for ${(100 * access.knownShare).toFixed(1)}% of allocated byte-seconds`);
    // without the record beside it, the same snapshot is a plain trace: info as before
    const alone = join(mkdtempSync(join(tmpdir(), "lakebed-access-")), "gpt2_train.def.pickle.gz");
    copyFileSync(join(dir, "gpt2_train.def.pickle.gz"), alone);
    expect(JSON.parse(lakebed(["info", alone, "--json"]).stdout).devices[0]).not.toHaveProperty("access");
    const arrow = alone.replace(/\.pickle\.gz$/, ".arrow");
    expect(lakebed(["convert", join(dir, "gpt2_train.def.pickle.gz"), arrow]).status).toBe(0);
    expect(JSON.parse(lakebed(["info", arrow, "--json"]).stdout).devices[0].access).toEqual(access);
  });

  it("a damaged record beside a snapshot is one line naming it, and exit status 1", () => {
    const folder = mkdtempSync(join(tmpdir(), "lakebed-access-"));
    const snapshot = join(folder, "run.pickle.gz");
    copyFileSync(join(dir, "mlp_compiled.def.pickle.gz"), snapshot);
    writeFileSync(join(folder, "run.access.json.gz"), gzipSync(JSON.stringify({ format: "lakebed.access", version: 1, clock: "unix_us", t0_us: 0, names: ["aten.mm.default"], ops: [[3, 0, 1, 0]] })));
    const r = lakebed(["info", snapshot]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toEqual([`lakebed: ${join(folder, "run.access.json.gz")}: access record: operator 0: names operator 3 of 1`]);
  });
});
