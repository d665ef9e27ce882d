#!/usr/bin/env node
// The table of scripts/torch/steptime.sh's output: per workload and arm, the step time, its ratio to
// PyTorch's own allocator with a bootstrap interval, and whether that settles "within 2%".
//
//   node scripts/torch/steptime-report.mjs OUTDIR [--json] [--bootstrap N] [--bound 0.02]
//
// A process's step time is the mean over the batch shapes of the median step of each shape (its
// measured steps only); an arm's is the median over its processes. The ratio is the arm's over
// native's (every process of PyTorch's allocator pooled: native and native_b); native_b over native
// is the A/A control, two arms of the same allocator, which shows what the method can resolve.
// The ratio is paired by round (a round ran every arm side by side, in rotating order): in each
// round, the arm's process over that round's reference processes; the median over the rounds. The
// interval is a percentile bootstrap that resamples both levels: the rounds (with replacement) and,
// in each process, its steps of each shape; under 3 paired rounds the verdict is "not resolved". Verdict: "within" where the interval's upper end is at most 1 + bound,
// "over" where its lower end is above 1 + bound, else "not resolved".
//
// Beside: the same ratio on the GPU's clock (CUDA events around each step), the host's enqueue time
// (CPU time of the launching thread until the step function returned: near the step time means
// launch bound), the CPU time of all the process's threads over the step (--json only: a thread
// spinning in the synchronize makes it the step's wall time wherever the GPU is the bottleneck), and under the library its own time per step (its malloc and free latencies summed:
// lock, policy, device calls and fence waits), a direct bound on what it adds on the host's critical
// path, as a share of native's step.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { seededRandom } from "@lakebed/api";

export const TIMERS = { wall: "step_wall_ms", gpu: "step_gpu_ms", enqueueCpu: "step_enqueue_cpu_ms", enqueue: "step_enqueue_ms", processCpu: "step_process_cpu_ms" };

function median(v) {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;

/** A seeded generator (@lakebed/api's mulberry32), so the interval is the same on every run of the report. */
export const rng = seededRandom;

/** The runs of OUTDIR/runs/*.json (steptime.py), each with its measured steps grouped by shape. */
export function loadRuns(dir) {
  const runsDir = join(dir, "runs");
  if (!existsSync(runsDir)) throw new Error(`${runsDir}: no runs (steptime.sh writes them)`);
  return readdirSync(runsDir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => prepareRun(JSON.parse(readFileSync(join(runsDir, f), "utf8"))));
}

/** Adds byShape: for each timer (and the library's time), the measured steps of each shape. */
export function prepareRun(run) {
  const shapes = run.shapes ?? 4;
  const warmup = run.warmup_steps ?? 0;
  const group = (values) => {
    if (!values) return null;
    const g = Array.from({ length: shapes }, () => []);
    for (let i = warmup; i < values.length; i++) g[i % shapes].push(values[i]);
    return g;
  };
  const byShape = {};
  for (const [name, key] of Object.entries(TIMERS)) byShape[name] = group(run[key]);
  if (run.library) byShape.library = group(run.library.step_ms);
  return { ...run, byShape };
}

/** A process's step time on one timer: the mean over shapes of each shape's median (steps resampled where pick is given). */
function processTime(groups, pick) {
  if (!groups) return NaN;
  const perShape = groups.filter((g) => g.length > 0).map((g) => median(pick ? g.map(() => g[Math.floor(pick() * g.length)]) : g));
  return perShape.length ? mean(perShape) : NaN;
}

const isNative = (run) => run.allocator === "native";

/**
 * The summary of one workload's runs: per arm its processes' step times and the ratio to native's
 * with the bootstrap interval (timers wall and gpu), the A/A control, per-shape medians, the
 * library's own time.
 */
export function summarizeWorkload(runs, { bootstrap = 2000, bound = 0.02, seed = 15, armOrder = [] } = {}) {
  // native first, its A/A twin next, then the plan's order
  const rank = (a) => (a === "native" ? -2 : runs.find((r) => r.arm === a)?.allocator === "native" ? -1 : armOrder.indexOf(a) >= 0 ? armOrder.indexOf(a) : 1e6);
  const arms = [...new Set(runs.map((r) => r.arm))].sort((x, y) => rank(x) - rank(y) || (x < y ? -1 : 1));
  const rounds = [...new Set(runs.map((r) => r.round))].sort((a, b) => a - b);
  const byArm = Object.fromEntries(arms.map((a) => [a, runs.filter((r) => r.arm === a)]));
  const natives = runs.filter(isNative);
  const armTime = (procs, timer, pick) => median(procs.map((p) => processTime(p.byShape[timer], pick)).filter(Number.isFinite));
  // for each arm, the reference: native's pooled processes; for native_b, native's (A/A); native itself none
  const reference = (arm) => {
    if (byArm[arm][0] && !isNative(byArm[arm][0])) return natives;
    if (arm === "native") return null;
    return byArm.native ?? null;
  };
  // The ratio, paired by round: in each round, the arm's process over the reference's processes of
  // that round (their mean); the median over rounds. A round's processes ran side by side, so the
  // machine's drift between rounds (clocks, neighbours) cancels in each round's ratio.
  const pairedRatio = (arm, ref, timer, chosen, pick) => {
    const perRound = [];
    for (const r of chosen) {
      const a = byArm[arm].filter((p) => p.round === r).map((p) => processTime(p.byShape[timer], pick));
      const b = ref.filter((p) => p.round === r).map((p) => processTime(p.byShape[timer], pick));
      if (a.length && b.length) perRound.push(mean(a) / mean(b));
    }
    return median(perRound.filter(Number.isFinite));
  };
  const ratios = {};
  for (const timer of ["wall", "gpu"]) {
    const draw = rng(seed);
    ratios[timer] = {};
    for (const a of arms) {
      const ref = reference(a);
      if (!ref || !ref.length || !byArm[a][0]?.byShape[timer]) {
        ratios[timer][a] = { ratio: NaN, lo: NaN, hi: NaN, verdict: null, rounds: 0 };
        continue;
      }
      const paired = rounds.filter((r) => byArm[a].some((p) => p.round === r) && ref.some((p) => p.round === r));
      const point = pairedRatio(a, ref, timer, paired);
      const samples = [];
      for (let b = 0; b < bootstrap && paired.length; b++) {
        // the rounds drawn with replacement, and in each process its steps of each shape
        const chosen = paired.map(() => paired[Math.floor(draw() * paired.length)]);
        const r = pairedRatio(a, ref, timer, chosen, draw);
        if (Number.isFinite(r)) samples.push(r);
      }
      samples.sort((x, y) => x - y);
      const lo = quantile(samples, 0.025);
      const hi = quantile(samples, 0.975);
      // fewer than 3 paired rounds: the interval cannot stand for the spread between processes
      const verdict = !Number.isFinite(point) ? null : paired.length < 3 ? "not resolved" : hi <= 1 + bound ? "within" : lo > 1 + bound ? "over" : "not resolved";
      ratios[timer][a] = { ratio: point, lo, hi, verdict, rounds: paired.length };
    }
  }
  const nativeWall = armTime(natives, "wall");
  const armsOut = arms.map((a) => {
    const procs = byArm[a];
    const wall = procs.map((p) => processTime(p.byShape.wall));
    const shapes = procs[0]?.byShape.wall?.length ?? 0;
    const perShape = Array.from({ length: shapes }, (_, s) => median(procs.map((p) => median(p.byShape.wall[s] ?? []))));
    const lib = procs.filter((p) => p.library);
    const libMs = lib.length ? median(lib.map((p) => processTime(p.byShape.library))) : null;
    const measured = (p, key) => (p.library?.[key] ?? []).slice(p.warmup_steps ?? 0);
    const perStep = (key) => (lib.length ? median(lib.map((p) => mean(measured(p, key)))) : null);
    return {
      arm: a,
      allocator: procs[0]?.allocator,
      conf: procs[0]?.conf ?? "",
      processes: procs.length,
      rounds: procs.map((p) => p.round),
      processMs: wall,
      stepMs: median(wall),
      gpuMs: armTime(procs, "gpu"),
      enqueueCpuMs: armTime(procs, "enqueueCpu"),
      enqueueMs: armTime(procs, "enqueue"),
      processCpuMs: armTime(procs, "processCpu"),
      spread: wall.length > 1 ? (Math.max(...wall) - Math.min(...wall)) / median(wall) : 0,
      perShapeMs: perShape,
      wall: ratios.wall[a],
      gpu: ratios.gpu[a],
      libraryMs: libMs,
      libraryShare: libMs === null ? null : libMs / nativeWall,
      driverCallsPerStep: perStep("step_driver_calls"),
      driverMsPerStep: perStep("step_driver_ms"),
      fenceMsPerStep: perStep("step_fence_ms"),
      steal: procs.reduce((s, p) => s + (p.measured?.machine_cpu_ticks?.steal ?? 0), 0),
      involuntarySwitches: median(procs.map((p) => p.measured?.involuntary_switches ?? 0)),
      smClockMhz: median(procs.map((p) => p.smClockMhz).filter((x) => x !== undefined && Number.isFinite(x))),
      peakReserved: median(procs.map((p) => p.peak_reserved ?? NaN)),
      latencyNs: latencyOf(procs),
      lossMaxRelDiff: lossDiff(procs, natives),
    };
  });
  return { workload: runs[0]?.workload, rounds: rounds.length, nativeMs: nativeWall, nativeSpread: spreadOf(natives), arms: armsOut };
}

/**
 * Allocation and free latency, nanoseconds, each the median over the arm's processes of a process's
 * median or p99: "python" (steptime.py's seeded alloc/delete sequence after the steps, timed from
 * Python, the same under every allocator) and, under the library, "library" (its own time in each
 * malloc and free of the measured steps). null where no process measured it.
 */
function latencyOf(procs) {
  const pick = (get) => {
    const v = procs.map(get).filter((x) => x !== undefined && x !== null && Number.isFinite(x));
    return v.length ? median(v) : null;
  };
  const pair = (get) => ({ median: pick((p) => get(p)?.median), p99: pick((p) => get(p)?.p99) });
  return {
    python: { malloc: pair((p) => p.python_malloc_ns), free: pair((p) => p.python_free_ns) },
    library: { malloc: pair((p) => p.library?.malloc_ns), free: pair((p) => p.library?.free_ns) },
  };
}

function spreadOf(procs) {
  const t = procs.map((p) => processTime(p.byShape.wall)).filter(Number.isFinite);
  return t.length > 1 ? (Math.max(...t) - Math.min(...t)) / median(t) : 0;
}

/** The largest relative difference of any step's loss from the first native process's (the same data and seed). */
function lossDiff(procs, natives) {
  const ref = natives[0]?.losses;
  if (!ref) return null;
  let worst = 0;
  for (const p of procs)
    for (let i = 0; i < Math.min(ref.length, p.losses?.length ?? 0); i++) worst = Math.max(worst, Math.abs(p.losses[i] - ref[i]) / Math.abs(ref[i] || 1));
  return worst;
}

/** nvidia-smi's log (steptime.sh: timestamp, clocks.sm, ...; UTC): the median SM clock during each process's measured steps. */
export function attachGpuClocks(runs, csvText) {
  const samples = [];
  for (const line of csvText.split("\n")) {
    const f = line.split(",").map((x) => x.trim());
    if (f.length < 2) continue;
    const t = Date.parse(f[0].replace(/\//g, "-").replace(" ", "T") + "Z") / 1000;
    const mhz = Number.parseFloat(f[1]);
    if (Number.isFinite(t) && Number.isFinite(mhz)) samples.push([t, mhz]);
  }
  for (const r of runs) {
    const inside = samples.filter(([t]) => t >= r.unix_measured && t <= r.unix_end).map(([, m]) => m);
    if (inside.length) r.smClockMhz = median(inside);
  }
  return runs;
}

export function summarize(runs, opts = {}) {
  const workloads = [...new Set(runs.map((r) => r.workload))];
  return workloads.map((w) => summarizeWorkload(runs.filter((r) => r.workload === w), opts));
}

const fmt = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? "" : x.toFixed(d));
const ratioText = (r) => (r && Number.isFinite(r.ratio) ? `${fmt(r.ratio, 3)} [${fmt(r.lo, 3)}, ${fmt(r.hi, 3)}]` : "");

export function toMarkdown(summaries, { bound = 0.02 } = {}) {
  const out = [];
  for (const s of summaries) {
    out.push(`### ${s.workload}: ${s.rounds} rounds; native ${fmt(s.nativeMs, 2)} ms per step, its processes within ${fmt(100 * s.nativeSpread, 1)}% of each other`, "");
    out.push(
      `| arm | processes | step ms (per process) | ratio to native [95%] | within ${100 * bound}%? | GPU-clock ratio [95%] | enqueue CPU ms | library ms / step (% of native) | device calls, ms / step | fence ms / step | SM MHz | steal ticks | max loss diff |`,
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    );
    for (const a of s.arms) {
      const label = a.arm === "native" ? "native (reference)" : a.allocator === "native" ? `${a.arm} (A/A: over native)` : `${a.arm}${a.conf ? ` \`${a.conf}\`` : ""}`;
      out.push(
        `| ${label} | ${a.processes} | ${fmt(a.stepMs, 2)} (${a.processMs.map((x) => fmt(x, 1)).join(", ")}) | ${ratioText(a.wall)} | ${a.wall.verdict ?? ""} | ${ratioText(a.gpu)} | ${fmt(a.enqueueCpuMs, 2)} | ${a.libraryMs === null ? "" : `${fmt(a.libraryMs, 3)} (${fmt(100 * a.libraryShare, 2)}%)`} | ${a.driverCallsPerStep === null ? "" : `${fmt(a.driverCallsPerStep, 1)}, ${fmt(a.driverMsPerStep, 2)}`} | ${a.fenceMsPerStep === null ? "" : fmt(a.fenceMsPerStep, 2)} | ${fmt(a.smClockMhz, 0)} | ${a.steal} | ${a.lossMaxRelDiff === null ? "" : a.lossMaxRelDiff.toExponential(1)} |`,
      );
    }
    out.push("", "Per shape (median over processes of each process's median step, ms):", "");
    const n = Math.max(...s.arms.map((a) => a.perShapeMs.length));
    out.push(`| arm | ${Array.from({ length: n }, (_, i) => `shape ${i}`).join(" | ")} |`, `|---|${"---|".repeat(n)}`);
    for (const a of s.arms) out.push(`| ${a.arm} | ${a.perShapeMs.map((x) => fmt(x, 2)).join(" | ")} |`);
    out.push("");
    if (s.arms.some((a) => a.latencyNs.python.malloc.median !== null)) {
      const ns = (q) => (q.median === null ? "" : `${fmt(q.median, 0)} / ${fmt(q.p99, 0)}`);
      out.push(
        "Latency, ns, median / p99 (each the median over the arm's processes). Python: the same seeded alloc/delete sequence after the steps, timed from Python under every allocator; library: its own time in each malloc and free of the measured steps.",
        "",
        "| arm | Python alloc | Python free | library malloc | library free |",
        "|---|---|---|---|---|",
      );
      for (const a of s.arms) {
        const l = a.latencyNs;
        out.push(`| ${a.arm} | ${ns(l.python.malloc)} | ${ns(l.python.free)} | ${ns(l.library.malloc)} | ${ns(l.library.free)} |`);
      }
      out.push("");
    }
  }
  return out.join("\n");
}

export function report(dir, opts = {}) {
  const runs = loadRuns(dir);
  const planPath = join(dir, "plan.json");
  if (existsSync(planPath)) opts = { armOrder: JSON.parse(readFileSync(planPath, "utf8")).arms ?? [], ...opts };
  const gpu = join(dir, "gpu.csv");
  if (existsSync(gpu)) attachGpuClocks(runs, readFileSync(gpu, "utf8"));
  return summarize(runs, opts);
}

function main(argv) {
  const dir = argv.find((a) => !a.startsWith("--") && !/^\d/.test(a));
  if (!dir) {
    console.error("usage: node scripts/torch/steptime-report.mjs OUTDIR [--json] [--bootstrap N] [--bound 0.02]");
    process.exit(2);
  }
  const opt = (name, dflt) => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const opts = { bootstrap: opt("--bootstrap", 2000), bound: opt("--bound", 0.02) };
  const summaries = report(dir, opts);
  if (argv.includes("--json")) console.log(JSON.stringify(summaries, null, 1));
  else console.log(toMarkdown(summaries, opts));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main(process.argv.slice(2));
