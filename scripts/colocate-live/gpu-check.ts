// The live half of colocation on a GPU, in one run (scripts/colocate-live/run.sh on the device
// machine; prepare.sh bundles this file): N tenant processes of one model sharing their parameter
// chunks by file descriptor with data verified and the device memory measured against the sum
// alone; a write through a read-only shared mapping refused by CUDA; the 1 GiB handover between
// two processes (p50/p99) beside free-then-malloc measured in the same run; the export and import
// cost per chunk beside the H100 floor (export 34 us, import + map + access 47-56 us).
// Writes colocate-live.json under --out and prints a summary; exit 1 when a check failed.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runLiveDedup } from "../../packages/api/src/colocate/live/live-dedup.js";
import { runLiveHandover } from "../../packages/api/src/colocate/live/handover-live.js";
import type { LiveDedupPlan } from "../../packages/api/src/colocate/live/dedup-plan.js";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

async function main(): Promise<number> {
  const out = arg("out", "colocate-live-out");
  const backend = arg("backend", "cuda") as "cuda" | "host";
  const plan = JSON.parse(readFileSync(arg("plan", ""), "utf8")) as LiveDedupPlan;
  const acquireBytes = Number(arg("acquire-bytes", String(GiB)));
  const iterations = Number(arg("iterations", "30"));
  mkdirSync(out, { recursive: true });
  const result: Record<string, unknown> = { plan: { scenario: plan.scenario, tenants: plan.tenants.length } };
  const failures: string[] = [];
  const save = () => writeFileSync(join(out, "colocate-live.json"), JSON.stringify({ ...result, failures }, null, 2));
  try {
    const t0 = Date.now();
    const dedup = await runLiveDedup(plan, { backend, verifyData: true, probeWrite: true });
    result.dedup = dedup;
    save();
    if (!dedup.dataVerified) failures.push("dedup: data not intact");
    if (!dedup.sharedContentEqual) failures.push("dedup: shared content differs between processes");
    if (dedup.probe?.afterMismatchedBytes !== 0) failures.push(`dedup: after the write probe, ${dedup.probe?.afterMismatchedBytes} bytes changed`);
    console.log(`dedup (${((Date.now() - t0) / 1000).toFixed(1)} s): ${plan.tenants.length} processes, ${(dedup.aloneSumBytes / MiB).toFixed(0)} MiB alone, ${(dedup.dedupBytes / MiB).toFixed(0)} MiB by the books (${dedup.ratio.toFixed(3)} x), measured ${dedup.measuredDeviceBytes === null ? "-" : (dedup.measuredDeviceBytes / MiB).toFixed(0)} MiB (${dedup.measuredRatio?.toFixed(3)} x); verified ${dedup.dataVerified}, content equal ${dedup.sharedContentEqual}`);
    console.log(`  export ${dedup.exportWall.p50Us.toFixed(1)} us p50 (driver ${dedup.exportDriver.p50Us.toFixed(1)}), import+map+RO ${dedup.importWall.p50Us.toFixed(1)} us p50 (driver ${dedup.importDriver.p50Us.toFixed(1)}, p99 ${dedup.importDriver.p99Us.toFixed(1)})`);
    console.log(`  write probe: ${JSON.stringify(dedup.probe)}`);
  } catch (e) {
    failures.push(`dedup: ${(e as Error).message}`);
    save();
  }
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
