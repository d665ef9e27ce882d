#!/usr/bin/env node
// Import speed of @lakebed/traces against CPython's C unpickler on the same files.
//
// For each file: the median and fastest wall time of readTrace (read + decompress + decode + initial
// state + block ids, in this process after one warm-up call) and the same for CPython's
// `pickle.load(gzip.open(F))` (or `pickle.load(open(F, 'rb'))` for plain pickles), timed inside the
// interpreter, so interpreter start-up is not counted. Also the first (cold, unoptimized) readTrace
// of the process. Medians are the figure to quote; minimums show the spread on a shared machine.
//
// Usage: node packages/traces/bench/import-speed.mjs [--runs N] FILE...   (after building the package)
import { execFileSync } from "node:child_process";
import { readTrace } from "../dist/index.js";

const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 7;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function pythonSeconds(file) {
  const code = [
    "import gzip, pickle, sys, time",
    "f = sys.argv[1]",
    "opener = gzip.open if open(f, 'rb').read(2) == b'\\x1f\\x8b' else (lambda p: open(p, 'rb'))",
    "ts = []",
    `for _ in range(${runs}):`,
    "    t = time.perf_counter(); pickle.load(opener(f)); ts.append(time.perf_counter() - t)",
    "ts.sort(); print(ts[len(ts) // 2], ts[0])",
  ].join("\n");
  const [med, min] = execFileSync("python3", ["-c", code, file], { encoding: "utf8" }).trim().split(" ").map(Number);
  return { median: med, min };
}

async function lakebedSeconds(file) {
  const t0 = performance.now();
  const trace = await readTrace(file);
  const cold = (performance.now() - t0) / 1000;
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await readTrace(file);
    times.push((performance.now() - t) / 1000);
  }
  return { cold, warm: median(times), min: Math.min(...times), events: trace.devices.reduce((n, d) => n + d.events.length, 0) };
}

const rows = [];
for (const file of args) {
  const lakebed = await lakebedSeconds(file);
  const python = pythonSeconds(file);
  rows.push({
    file: file.split("/").pop(),
    events: lakebed.events,
    "cpython median ms": +(python.median * 1000).toFixed(1),
    "lakebed median ms": +(lakebed.warm * 1000).toFixed(1),
    "speedup (medians)": +(python.median / lakebed.warm).toFixed(2),
    "cpython min ms": +(python.min * 1000).toFixed(1),
    "lakebed min ms": +(lakebed.min * 1000).toFixed(1),
    "lakebed first call ms": +(lakebed.cold * 1000).toFixed(1),
  });
}
console.table(rows);
