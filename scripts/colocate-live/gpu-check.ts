// The live half of colocation on a GPU, in one run (scripts/colocate-live/run.sh or
// scripts/record-dedup/device-run.sh on the device machine; prepare.sh bundles this file):
//   dedup   N tenant processes of one model sharing their parameter chunks by file descriptor,
//           each replaying its scenario timeline through its policy (with --scenario; with --plan
//           made elsewhere, whatever the plan says), data verified across processes, the device
//           memory measured against the sum alone, and a write through a read-only shared mapping
//           refused by CUDA
//   sweep   (--sweep 1,2,..) the same for the scenario's first N tenants, data verified, while
//           --sweep-budget-s allows (each run's figures are written as it ends)
//   handover  the 1 GiB handover between two processes (p50/p99) beside free-then-malloc measured
//           in the same run, and the export and import cost per chunk beside the H100 floor
//           (export 34 us, import + map + access 47-56 us); --no-handover leaves it out
// Writes colocate-live.json under --out and prints a summary; exit 1 when a check failed.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runLiveDedup, type LiveDedupResult } from "../../packages/api/src/colocate/live/live-dedup.js";
import { runLiveHandover } from "../../packages/api/src/colocate/live/handover-live.js";
import { planLiveDedup, type LiveDedupPlan } from "../../packages/api/src/colocate/live/dedup-plan.js";
import { readScenario } from "../../packages/api/src/colocate/scenario.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

function dedupChecks(label: string, d: LiveDedupResult, failures: string[]): void {
  if (!d.dataVerified) failures.push(`${label}: data not intact`);
  if (!d.sharedContentEqual) failures.push(`${label}: shared content differs between processes`);
  if (!d.replaysAsSimulated) failures.push(`${label}: a live replay reserved other than the simulator's, or an allocation failed`);
  if (d.registry.afterExit.fdsHeld !== 0) failures.push(`${label}: the registry held ${d.registry.afterExit.fdsHeld} descriptors after the tenants left`);
}

function dedupLine(d: LiveDedupResult): string {
  const replays = d.replays === null ? "" : `; replays ${d.replays.map((r) => `${r.segmentsRun} req ${(r.peakReservedBytes / MiB).toFixed(0)} MiB (sim ${(r.simulatedPeakBytes / MiB).toFixed(0)}) ${r.verifiedAllocations} checked ${r.verifyFailures} changed ${r.seconds.toFixed(1)} s`).join(", ")}`;
  return `${d.tenants.length} processes, ${(d.aloneSumBytes / MiB).toFixed(0)} MiB alone, ${(d.dedupBytes / MiB).toFixed(0)} MiB by the books (${d.ratio.toFixed(3)} x), measured ${d.measuredDeviceBytes === null ? "-" : (d.measuredDeviceBytes / MiB).toFixed(0)} MiB (${d.measuredRatio?.toFixed(3)} x); verified ${d.dataVerified}, content equal ${d.sharedContentEqual}${replays}`;
}

async function main(): Promise<number> {
  const started = Date.now();
  const out = arg("out", "colocate-live-out");
  const backend = arg("backend", "cuda") as "cuda" | "host";
  const scenarioFile = arg("scenario", "");
  const full: LiveDedupPlan = scenarioFile ? await planLiveDedup(readScenario(scenarioFile)) : (JSON.parse(readFileSync(arg("plan", ""), "utf8")) as LiveDedupPlan);
  const count = Number(arg("tenants", String(full.tenants.length)));
  const plan: LiveDedupPlan = { ...full, tenants: full.tenants.slice(0, count) };
  const acquireBytes = Number(arg("acquire-bytes", String(GiB)));
  const iterations = Number(arg("iterations", "30"));
  const sweep = arg("sweep", "")
    .split(",")
    .filter((s) => s !== "")
    .map(Number);
  const sweepBudgetMs = Number(arg("sweep-budget-s", "120")) * 1000;
  mkdirSync(out, { recursive: true });
  const result: Record<string, unknown> = { plan: { scenario: plan.scenario, tenants: plan.tenants.length, perTenant: full.tenants.map(({ keys, ...t }) => ({ ...t, windows: keys.length })) }, planSeconds: (Date.now() - started) / 1000 };
  const failures: string[] = [];
  const save = () => writeFileSync(join(out, "colocate-live.json"), JSON.stringify({ ...result, failures }, null, 2));
  console.log(`plan (${((Date.now() - started) / 1000).toFixed(1)} s): ${full.tenants.length} tenants, ${full.tenants[0].keys.length} shared windows each, alone ${full.tenants.map((t) => (t.aloneBytes / MiB).toFixed(0)).join("/")} MiB`);
  save();
  try {
    const t0 = Date.now();
    const dedup = await runLiveDedup(plan, { backend, verifyData: true, probeWrite: true, onProgress: (line) => console.log(`  ${line}`) });
    result.dedup = dedup;
    save();
    dedupChecks("dedup", dedup, failures);
    if (dedup.probe?.afterMismatchedBytes !== 0) failures.push(`dedup: after the write probe, ${dedup.probe?.afterMismatchedBytes} bytes changed`);
    console.log(`dedup (${((Date.now() - t0) / 1000).toFixed(1)} s): ${dedupLine(dedup)}`);
    console.log(`  export ${dedup.exportWall.p50Us.toFixed(1)} us p50 (driver ${dedup.exportDriver.p50Us.toFixed(1)}), import+map+RO ${dedup.importWall.p50Us.toFixed(1)} us p50 (driver ${dedup.importDriver.p50Us.toFixed(1)}, p99 ${dedup.importDriver.p99Us.toFixed(1)})`);
    console.log(`  write probe: ${JSON.stringify(dedup.probe)}`);
  } catch (e) {
    failures.push(`dedup: ${(e as Error).message}`);
    save();
  }
  const swept: LiveDedupResult[] = [];
  result.sweep = swept;
  for (const n of sweep) {
    if (Date.now() - started > sweepBudgetMs) {
      console.log(`sweep: N = ${n} and after left out (the budget of ${sweepBudgetMs / 1000} s is spent)`);
      break;
    }
    try {
      const t0 = Date.now();
      const d = await runLiveDedup({ ...full, tenants: full.tenants.slice(0, n) }, { backend, verifyData: true, onProgress: (line) => console.log(`  N = ${n}: ${line}`) });
      swept.push(d);
      save();
      dedupChecks(`sweep N = ${n}`, d, failures);
      console.log(`sweep N = ${n} (${((Date.now() - t0) / 1000).toFixed(1)} s): ${dedupLine(d)}`);
    } catch (e) {
      failures.push(`sweep N = ${n}: ${(e as Error).message}`);
      save();
    }
  }
  if (!process.argv.includes("--no-handover")) {
    try {
      const t0 = Date.now();
      const poolBytes = Math.ceil((acquireBytes * 1.5) / (2 * MiB)) * 2 * MiB;
      const h = await runLiveHandover({ backend, poolBytes, acquireBytes, iterations });
      result.handover = h;
      save();
      if (h.notZeroBytes > 0) failures.push(`handover: ${h.notZeroBytes} sampled bytes not zero`);
      if (h.vmmCalls > 0) failures.push(`handover: ${h.vmmCalls} VMM calls on the inference side`);
      console.log(`handover (${((Date.now() - t0) / 1000).toFixed(1)} s): ${(h.acquireBytes / MiB).toFixed(0)} MiB from a pool of ${h.pool.chunks} chunks, ${h.iterations} times: p50 ${(h.handover.p50Us / 1000).toFixed(3)} ms, p99 ${(h.handover.p99Us / 1000).toFixed(3)} ms (warm-up ${(h.warmUpUs / 1000).toFixed(3)} ms); free-then-malloc p50 ${(h.freeThenMalloc.p50Us / 1000).toFixed(3)} ms, p99 ${(h.freeThenMalloc.p99Us / 1000).toFixed(3)} ms`);
      console.log(`  pool sent once: export ${h.exportWall.p50Us.toFixed(1)} us p50 (driver ${h.exportDriver.p50Us.toFixed(1)}), import+map ${h.importWall.p50Us.toFixed(1)} us p50 (driver ${h.importDriver.p50Us.toFixed(1)}), one setAccess over the pool ${h.setAccessWholePoolUs.toFixed(0)} us; ${h.notZeroBytes} bytes not zero, ${h.vmmCalls} VMM calls`);
    } catch (e) {
      failures.push(`handover: ${(e as Error).message}`);
      save();
    }
  }
  save();
  for (const f of failures) console.log(`FAILED: ${f}`);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    console.error(e.stack ?? e.message);
    process.exit(1);
  },
);
