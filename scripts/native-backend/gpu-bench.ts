// The native backend's GPU check and benchmark, in one run (the device machine has Node but no
// npm; prepare-device.sh bundles this file with the packages into .device/live/):
//   1. differential: every trace in --traces under its recorded policy, vms and lakebed, on the
//      simulator and live on --backend: identical device calls and statistics; nothing left after
//      teardown; device memory really in use at the peak (cuMemGetInfo growth since just before
//      the replay) against the simulator's peak reserved;
//   2. --verify-data live replays of every trace (recorded policy and vms): no pattern changed;
//   3. latency: per driver call at three layers (the driver function inside the backend, the C++
//      backend around it, the whole path from the policy's Wasm import) against the very same
//      calls made through the raw driver in the same run (raw_replay; on the GPU only), stitching
//      per 2 MiB chunk, cached allocations and frees as the policy serves them, and what one
//      JS -> native call and one clock read cost at least.
// Writes live-bench.json and live-bench.md under --out; exit status 1 when a check fails.
//
//   node .device/live/gpu-bench.mjs --traces .device/traces --raw-replay .device/native-cuda/raw_replay --out $OUT
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { differentialReplay, replayLive, resolvePolicy, type LiveBackend, type PolicyName } from "@lakebed/api";
import { doctor, openDriver } from "@lakebed/native-cuda";
import { readTrace, type Trace } from "@lakebed/traces";
import { cachedLatency, type CachedLatency } from "./cached-latency.js";
import { rawFloor, type ReplayFloor } from "./raw-floor.js";
import { markdown } from "./bench-report.js";

const { values: args } = parseArgs({
  options: {
    traces: { type: "string", default: ".device/traces" },
    out: { type: "string", default: "live-bench-out" },
    backend: { type: "string", default: "cuda" },
    "raw-replay": { type: "string", default: ".device/native-cuda/raw_replay" },
    "skip-verify": { type: "boolean", default: false },
    /** internal: run one latency case in this (fresh) process and write its JSON to this file */
    "floor-case": { type: "string" },
  },
});
const backend = args.backend as LiveBackend;
const MiB = 2 ** 20;
/** How far real memory in use at the peak may be from the simulator's peak reserved. */
export const PEAK_TOLERANCE_BYTES = 64 * MiB;

export interface DifferentialRow {
  trace: string;
  policy: string;
  identical: boolean;
  divergence: string | null;
  statDifferences: number;
  calls: number;
  simulatedPeakReservedBytes: number;
  realPeakInUseBytes: number | null;
  peakDifferenceBytes: number | null;
  leaks: number;
  seconds: number;
}

export interface VerifyRow {
  trace: string;
  policy: string;
  verifiedAllocations: number;
  verifyFailures: number;
  leaks: number;
  seconds: number;
}

export interface FloorRow {
  trace: string;
  policy: string;
  floor: ReplayFloor;
  cached: CachedLatency | null;
}

/** Floors of the timing itself, each the mean of many back-to-back calls, in nanoseconds. */
export interface Crossing {
  /** one call into the addon that does nothing (nop()), and one that reads four numbers */
  nopNs: number;
  nop4Ns: number;
  /** one performance.now(), as the imports time a call */
  performanceNowNs: number;
  /** one native clock read (clock_gettime), as DriverCore times a call */
  clockReadNs: number;
}

export interface BenchReport {
  backend: LiveBackend;
  device: string;
  doctor: ReturnType<typeof doctor>;
  node: string;
  crossing: Crossing;
  differential: DifferentialRow[];
  verify: VerifyRow[];
  floors: FloorRow[];
  failures: string[];
}

interface SharedTrace {
  name: string;
  file: string;
  capacityBytes?: number;
}

function sharedTraces(dir: string): SharedTrace[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".pickle.gz"))
    .sort()
    .map((f) => {
      const name = f.replace(/\.pickle\.gz$/, "");
      const meta = JSON.parse(readFileSync(join(dir, `${name}.stats.json`), "utf8"));
      return { name, file: join(dir, f), capacityBytes: meta.capacity_bytes ?? undefined };
    });
}

const held = (l: { handles: number; reservations: number; mappings: number; mallocs: number }) => l.handles + l.reservations + l.mappings + l.mallocs;

async function differential(report: BenchReport, t: SharedTrace, trace: Trace, policy: PolicyName | undefined): Promise<void> {
  const started = performance.now();
  const r = await differentialReplay(trace, { backends: [backend], policy, capacityBytes: t.capacityBytes, watchMemory: true });
  for (const d of r.devices) {
    for (const l of d.live) {
      const real = l.document.memory?.peakInUseBytes ?? null;
      const row: DifferentialRow = {
        trace: t.name,
        policy: r.policy,
        identical: l.divergence === null && Object.keys(l.statDifferences).length === 0,
        divergence: l.divergence ? `call ${l.divergence.index}: simulator ${l.divergence.expected}, ${backend} ${l.divergence.actual}` : null,
        statDifferences: Object.keys(l.statDifferences).length,
        calls: l.calls.kinds.length,
        simulatedPeakReservedBytes: d.simulated.peakReservedBytes,
        realPeakInUseBytes: real,
        peakDifferenceBytes: real === null ? null : real - d.simulated.peakReservedBytes,
        leaks: held(l.document.leaks),
        seconds: (performance.now() - started) / 1000,
      };
      report.differential.push(row);
      console.log(JSON.stringify(row));
      if (!row.identical) report.failures.push(`${t.name} ${r.policy}: ${row.divergence ?? `${row.statDifferences} statistics differ`}`);
      if (row.leaks > 0) report.failures.push(`${t.name} ${r.policy}: ${row.leaks} left after teardown`);
    }
  }
}

async function verify(report: BenchReport, t: SharedTrace, trace: Trace, policy: PolicyName | undefined): Promise<void> {
  const started = performance.now();
  const { document } = await replayLive(trace, { backend, policy, capacityBytes: t.capacityBytes, verifyData: true });
  for (const d of document.devices) {
    const row: VerifyRow = {
      trace: t.name,
      policy: document.policy,
      verifiedAllocations: d.verifiedAllocations ?? 0,
      verifyFailures: d.verifyFailures ?? 0,
      leaks: held(d.leaks),
      seconds: (performance.now() - started) / 1000,
    };
    report.verify.push(row);
    console.log(JSON.stringify(row));
    if (row.verifyFailures > 0 || row.verifiedAllocations === 0) report.failures.push(`${t.name} ${row.policy}: verify-data ${row.verifyFailures} of ${row.verifiedAllocations} changed`);
    if (row.leaks > 0) report.failures.push(`${t.name} ${row.policy}: ${row.leaks} left after teardown (verify-data)`);
  }
}

async function floor(report: BenchReport, t: SharedTrace, trace: Trace, policy: PolicyName | undefined, withCached: boolean): Promise<void> {
  // Three replays of the same calls. The first, and raw_replay making its calls, only warm up: they
  // pay for the driver's first use of each size (page-table pools, allocator state) on both sides.
  // The second is timed from the import only, so that no native clock read weighs on the whole
  // path; the third also inside the native layer, and raw_replay makes its calls again: the floor.
  const rawTool = backend === "cuda" ? args["raw-replay"]! : null;
  const replay = async (timeNative: boolean) => (await replayLive(trace, { backend, policy, capacityBytes: t.capacityBytes, timeCalls: true, timeNative })).runs[0];
  const policyName = resolvePolicy(trace, { policy }).policy;
  const label = `${t.name}.${policyName}`;
  const warm = await replay(true);
  rawFloor(warm.recorder, warm.recorder, rawTool, args.out!, label);
  const plain = await replay(false);
  const timed = await replay(true);
  const f = rawFloor(plain.recorder, timed.recorder, rawTool, args.out!, label);
  let cached: CachedLatency | null = null;
  if (withCached) {
    const { policy: p, conf } = resolvePolicy(trace, { policy });
    cached = cachedLatency(backend, trace.devices[0], p, conf, t.capacityBytes);
  }
  report.floors.push({ trace: t.name, policy: policyName, floor: f, cached });
  console.log(JSON.stringify({ trace: t.name, policy: policyName, totalOverPercent: f.totalOverPercent, stitch: f.stitchPerChunk, cached }));
}

/** Mean nanoseconds of one call of `f`, the lowest of five batches. */
function perCallNs(f: () => void, n = 200_000): number {
  let best = Infinity;
  for (let batch = 0; batch < 5; batch++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) f();
    best = Math.min(best, ((performance.now() - t0) * 1e6) / n);
  }
  return best;
}

function crossing(kind: LiveBackend): Crossing {
  const driver = openDriver(kind);
  try {
    const d = driver.direct;
    driver.timeCalls(true);
    return {
      nopNs: perCallNs(() => d.nop()),
      nop4Ns: perCallNs(() => d.nop(1, 2, 3, 4)),
      performanceNowNs: perCallNs(() => performance.now()),
      clockReadNs: driver.takeCallTimes().clockReadNs,
    };
  } finally {
    driver.teardown();
  }
}

/** The latency cases: trace, policy (default: the recorded one), and whether to time cached calls. */
const FLOOR_CASES = [
  ["gpt2_ckpt.def", undefined, true],
  ["llama_lora.exp", undefined, true],
  ["gpt2_ckpt.def", "vms", false],
  ["gpt2_ckpt.def", "lakebed", false],
] as const;

async function floorCase(spec: string): Promise<void> {
  const [index, file] = [Number(spec.slice(0, spec.indexOf(":"))), spec.slice(spec.indexOf(":") + 1)];
  const [name, policy, withCached] = FLOOR_CASES[index];
  const t = sharedTraces(args.traces!).find((x) => x.name === name)!;
  const report = { floors: [] } as unknown as BenchReport;
  await floor(report, t, await readTrace(t.file), policy, withCached);
  writeFileSync(file, JSON.stringify(report.floors[0]));
}

async function main(): Promise<void> {
  if (args["floor-case"]) return floorCase(args["floor-case"]);
  mkdirSync(args.out!, { recursive: true });
  const doc = doctor();
  if (!doc.drivers[backend].available) {
    console.log(`the ${backend} driver is not available: ${doc.drivers[backend].reason}`);
    process.exitCode = 1;
    return;
  }
  const probe = openDriver(backend);
  const device = probe.info().description;
  probe.teardown();
  const report: BenchReport = { backend, device, doctor: doc, node: process.version, crossing: crossing(backend), differential: [], verify: [], floors: [], failures: [] };
  console.log(JSON.stringify({ crossing: report.crossing }));
  const traces = sharedTraces(args.traces!);
  const loaded = new Map<string, Trace>();
  for (const t of traces) loaded.set(t.name, await readTrace(t.file));

  const save = () => {
    writeFileSync(join(args.out!, "live-bench.json"), JSON.stringify(report, null, 1));
    writeFileSync(join(args.out!, "live-bench.md"), markdown(report, PEAK_TOLERANCE_BYTES));
  };
  for (const t of traces) for (const p of [undefined, "vms", "lakebed"] as const) await differential(report, t, loaded.get(t.name)!, p);
  save();

  // Each case runs in a fresh process, as raw_replay does: the driver's own state after a long
  // process (earlier replays in it) must not weigh on one side only. raw_replay makes CUDA calls:
  // on host memory the cases run without the raw floor (a dry run of the benchmark).
  for (let i = 0; i < FLOOR_CASES.length; i++) {
    if (!traces.some((t) => t.name === FLOOR_CASES[i][0])) continue;
    const file = join(args.out!, `floor-${i}.json`);
    execFileSync(process.execPath, [process.argv[1], ...process.argv.slice(2), "--floor-case", `${i}:${file}`], { stdio: "inherit" });
    report.floors.push(JSON.parse(readFileSync(file, "utf8")));
  }
  save();
  // --verify-data: every trace under its recorded policy; vms (stitched ranges) on the traces whose
  // allocations make fewer probes (each probe is one small copy to or from the GPU)
  if (!args["skip-verify"]) {
    for (const t of traces) {
      await verify(report, t, loaded.get(t.name)!, undefined);
      if (!/^(gpt2_ckpt|llama_lora|lora_capped)/.test(t.name)) await verify(report, t, loaded.get(t.name)!, "vms");
      save();
    }
  }
  save();
  console.log(markdown(report, PEAK_TOLERANCE_BYTES));
  process.exitCode = report.failures.length > 0 ? 1 : 0;
}

await main();
