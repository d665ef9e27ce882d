import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./support/shared-traces.js";

/**
 * scripts/torch/steptime-report.mjs, the reporter of the GPU step-time runs (scripts/torch/steptime.sh),
 * on synthetic runs whose true ratios are known: it must find them, give intervals that hold them,
 * and say "within 2%" only where the interval shows it. No GPU, no PyTorch.
 */
const script = resolve(repoRoot, "scripts/torch/steptime-report.mjs");

interface Synth {
  arms: Record<string, { allocator: string; factor: number; libraryMs?: number }>;
  rounds: number;
  roundDrift: number; // each round's machine is this much slower than the last (shared by its arms)
  processNoise: number; // per process, multiplicative
  stepNoise: number; // per step, multiplicative
  seed: number;
}

async function syntheticRuns(s: Synth): Promise<Array<Record<string, unknown>>> {
  const { rng } = await import(script);
  const draw = rng(s.seed) as () => number;
  const normal = () => Math.sqrt(-2 * Math.log(1 - draw())) * Math.cos(2 * Math.PI * draw());
  const shapesMs = [30, 24, 23, 27]; // train.py's four batch shapes take different times
  const warmup = 8;
  const steps = warmup + 40;
  const names = Object.keys(s.arms);
  const runs: Array<Record<string, unknown>> = [];
  for (let r = 0; r < s.rounds; r++) {
    const machine = 1 + s.roundDrift * r;
    names.forEach((arm, position) => {
      const a = s.arms[arm]!;
      const proc = machine * a.factor * (1 + s.processNoise * normal());
      const wall: number[] = [];
      const gpu: number[] = [];
      for (let i = 0; i < steps; i++) {
        const t = (i < warmup ? 3 : 1) * shapesMs[i % 4]! * proc * (1 + s.stepNoise * normal());
        wall.push(t);
        gpu.push(t * 0.95);
      }
      const run: Record<string, unknown> = {
        workload: "gpt2_ckpt", arm, allocator: a.allocator, conf: "", round: r, position, shapes: 4, warmup_steps: warmup, steps,
        step_wall_ms: wall, step_gpu_ms: gpu, step_enqueue_ms: wall.map((x) => x * 0.9), step_enqueue_cpu_ms: wall.map((x) => x * 0.85),
        losses: Array.from({ length: steps }, (_, i) => 10 - i * 0.01), unix_measured: 1000 + r * 100 + position * 10, unix_end: 1005 + r * 100 + position * 10,
        measured: { involuntary_switches: 3, machine_cpu_ticks: { steal: 1 } }, peak_reserved: 5e9,
        // latency_probe.py's figures: this round's process of the arm, a known spread around the arm's
        python_malloc_ns: { n: 10000, median: 2000 * a.factor + 10 * r, p99: 5000 + r },
        python_free_ns: { n: 10000, median: 700 + r, p99: 2000 },
      };
      if (a.libraryMs !== undefined) {
        run.library = {
          step_ms: wall.map(() => a.libraryMs! * (1 + 0.1 * normal())), step_driver_calls: wall.map(() => 2), step_driver_ms: wall.map(() => 0.1),
          step_fence_ms: wall.map(() => 0),
          malloc_ns: { n: 5000, median: 600 + r, p99: 1600 }, free_ns: { n: 5000, median: 800, p99: 2300 + r },
        };
      }
      runs.push(run);
    });
  }
  return runs;
}

async function writeSynthetic(dir: string, s: Synth): Promise<void> {
  mkdirSync(join(dir, "runs"), { recursive: true });
  writeFileSync(join(dir, "plan.json"), JSON.stringify({ arms: Object.keys(s.arms) }));
  for (const run of await syntheticRuns(s)) writeFileSync(join(dir, "runs", `gpt2_ckpt.${run.arm}.r${run.round}.json`), JSON.stringify(run));
}

function report(dir: string, extra: string[] = []): Array<Record<string, any>> {
  return JSON.parse(execFileSync(process.execPath, [script, dir, "--json", "--bootstrap", "1000", ...extra], { encoding: "utf8", timeout: 60_000 }));
}

describe("steptime-report: the ratio to native with a bootstrap interval", () => {
  it("finds known ratios under drift between rounds and noise in processes and steps, and says which are within 2%", async () => {
    const dir = mkdtempSync(join(tmpdir(), "steptime-"));
    await writeSynthetic(dir, {
      arms: {
        native: { allocator: "native", factor: 1 },
        caching: { allocator: "caching", factor: 1.003, libraryMs: 0.4 },
        native_b: { allocator: "native", factor: 1 },
        vms: { allocator: "vms", factor: 1.08, libraryMs: 1.2 },
        lakebed: { allocator: "lakebed", factor: 1.025, libraryMs: 3 },
      },
      rounds: 8,
      roundDrift: 0.04, // 28% between the first round and the last, as two native processes differed on the H200
      processNoise: 0.003,
      stepNoise: 0.02,
      seed: 7,
    });
    writeFileSync(join(dir, "gpu.csv"), ["1970/01/01 00:16:41.000, 1980, 3201", "1970/01/01 00:16:42.000, 1900, 3201", "junk"].join("\n"));
    const [s] = report(dir);
    expect(s!.workload).toBe("gpt2_ckpt");
    expect(s!.rounds).toBe(8);
    const arm = (name: string) => s!.arms.find((a: { arm: string }) => a.arm === name);
    expect(s!.arms.map((a: { arm: string }) => a.arm)).toEqual(["native", "native_b", "caching", "vms", "lakebed"]);
    for (const [name, truth] of [["caching", 1.003], ["native_b", 1], ["vms", 1.08], ["lakebed", 1.025]] as const) {
      const w = arm(name).wall;
      // (the 95% interval misses now and then: its calibration is the next test's)
      expect(w.lo, name).toBeLessThanOrEqual(truth + 0.004);
      expect(w.hi, name).toBeGreaterThanOrEqual(truth - 0.004);
      expect(w.hi - w.lo, `${name}: the interval resolves 2%`).toBeLessThan(0.02);
      expect(Math.abs(w.ratio - truth), name).toBeLessThan(0.01);
    }
    expect(arm("caching").wall.verdict).toBe("within");
    expect(arm("native_b").wall.verdict).toBe("within");
    expect(arm("vms").wall.verdict).toBe("over");
    expect(arm("native").wall.verdict).toBeNull();
    expect(arm("vms").gpu.ratio).toBeCloseTo(arm("vms").wall.ratio, 6);
    // the library's own time per step, as a share of native's step (about 26 ms over the shapes)
    expect(arm("lakebed").libraryMs).toBeCloseTo(3, 1);
    expect(arm("lakebed").libraryShare).toBeGreaterThan(3 / 27 / 1.2);
    expect(arm("lakebed").libraryShare).toBeLessThan((3 / 26) * 1.2);
    expect(arm("native").libraryMs).toBeNull();
    // latency: the median over the arm's 8 processes (rounds 0-7) of each process's median and p99
    expect(arm("native").latencyNs.python.malloc).toEqual({ median: 2035, p99: 5003.5 });
    expect(arm("vms").latencyNs.python.free).toEqual({ median: 703.5, p99: 2000 });
    expect(arm("lakebed").latencyNs.library.malloc).toEqual({ median: 603.5, p99: 1600 });
    expect(arm("lakebed").latencyNs.library.free).toEqual({ median: 800, p99: 2303.5 });
    expect(arm("native").latencyNs.library.malloc).toEqual({ median: null, p99: null });
    expect(arm("native").smClockMhz).toBe(1940); // the samples inside round 0's native process
    expect(arm("caching").lossMaxRelDiff).toBe(0);
    // per-shape medians: the four shapes apart, the mixture kept out of the step time
    expect(arm("native").perShapeMs[0]).toBeGreaterThan(arm("native").perShapeMs[2] * 1.2);
  });

  it("says 'not resolved' where the processes scatter more than the difference, and prints the table", async () => {
    const dir = mkdtempSync(join(tmpdir(), "steptime-"));
    await writeSynthetic(dir, {
      arms: { native: { allocator: "native", factor: 1 }, caching: { allocator: "caching", factor: 1.02, libraryMs: 0.4 } },
      rounds: 3,
      roundDrift: 0,
      processNoise: 0.1,
      stepNoise: 0.05,
      seed: 11,
    });
    const [s] = report(dir);
    expect(s!.arms[1].wall.verdict).toBe("not resolved");
    const text = execFileSync(process.execPath, [script, dir, "--bootstrap", "200"], { encoding: "utf8" });
    expect(text).toContain("### gpt2_ckpt: 3 rounds");
    expect(text).toMatch(/\| caching \| 2050 \/ 5001 \| 701 \/ 2000 \| 601 \/ 1600 \| 800 \/ 2301 \|/);
    expect(text).toMatch(/\| native \| 2010 \/ 5001 \| 701 \/ 2000 \|  \|  \|/);
    expect(text).toMatch(/\| caching \| 3 \| [\d.]+ \([\d., ]+\) \| [\d.]+ \[[\d.]+, [\d.]+\] \| not resolved \|/);
  });

  it("gives intervals that hold the true ratio about as often as they claim (60 synthetic runs of 6 rounds)", async () => {
    const { prepareRun, summarizeWorkload } = await import(script);
    let held = 0;
    let resolved = 0;
    const trials = 60;
    for (let seed = 1; seed <= trials; seed++) {
      const runs = (await syntheticRuns({
        arms: { native: { allocator: "native", factor: 1 }, lakebed: { allocator: "lakebed", factor: 1.01, libraryMs: 1 } },
        rounds: 6,
        roundDrift: 0.05,
        processNoise: 0.004,
        stepNoise: 0.03,
        seed,
      })).map(prepareRun);
      const w = summarizeWorkload(runs, { bootstrap: 400, seed }).arms[1].wall;
      if (w.lo <= 1.01 && 1.01 <= w.hi) held++;
      if (w.verdict === "within") resolved++;
    }
    // (seeds 1-60: held 58 times; "within" 26 times: at 3% noise per step and 6 rounds, 1% is told
    // from 2% about half the time; the GPU run's A/A row shows what the real noise allows)
    expect(held / trials).toBeGreaterThan(0.85);
    expect(resolved / trials).toBeGreaterThan(0.3);
  });
});
