// The benchmark's tables, in Markdown (committed beside the JSON in packages/native-cuda/bench).
import type { BenchReport } from "./gpu-bench.js";
import type { LatencySummary } from "./latency.js";

const MiB = 2 ** 20;
const mib = (b: number) => (b / MiB).toFixed(1);
const us = (s: LatencySummary | null) => (s ? `${s.medianUs.toFixed(2)} / ${s.p99Us.toFixed(2)}` : "—");
const sizeName = (b: number) => (b === 0 ? "" : b % MiB === 0 ? `${b / MiB} MiB` : `${b} B`);

export function markdown(r: BenchReport, toleranceBytes: number): string {
  const out: string[] = [];
  out.push(`Device: ${r.device}; Node ${r.node}; backend ${r.backend}.`, "");
  out.push(`Checks: ${r.failures.length === 0 ? "all pass" : `${r.failures.length} failed:\n- ${r.failures.join("\n- ")}`}`, "");

  out.push("### Differential: simulator vs live, and real memory at the peak", "");
  out.push(`| trace | policy | device calls | identical calls and stats | left after teardown | simulator peak reserved (MiB) | real in use at peak (MiB) | real - predicted (MiB) |`);
  out.push("|---|---|---:|---|---:|---:|---:|---:|");
  for (const d of r.differential) {
    const diff = d.peakDifferenceBytes;
    const flag = diff === null ? "" : Math.abs(diff) <= toleranceBytes ? "" : " (over 64 MiB)";
    out.push(`| ${d.trace} | ${d.policy} | ${d.calls} | ${d.identical ? "yes" : `no: ${d.divergence ?? "stats"}`} | ${d.leaks} | ${mib(d.simulatedPeakReservedBytes)} | ${d.realPeakInUseBytes === null ? "—" : mib(d.realPeakInUseBytes)} | ${diff === null ? "—" : mib(diff) + flag} |`);
  }
  out.push("");

  if (r.verify.length) {
    out.push("### --verify-data", "");
    out.push("| trace | policy | allocations verified | pattern changed | left after teardown | seconds |");
    out.push("|---|---|---:|---:|---:|---:|");
    for (const v of r.verify) out.push(`| ${v.trace} | ${v.policy} | ${v.verifiedAllocations} | ${v.verifyFailures} | ${v.leaks} | ${v.seconds.toFixed(1)} |`);
    out.push("");
  }

  for (const f of r.floors) {
    out.push(`### Driver calls of ${f.trace} (${f.policy}), backend vs raw driver, same calls, same run (us, median / p99)`, "");
    out.push(
      `All ${f.floor.calls.reduce((n, c) => n + c.backend.n, 0)} calls: backend ${(f.floor.backendTotalUs / 1000).toFixed(1)} ms, raw ${(f.floor.rawTotalUs / 1000).toFixed(1)} ms, overhead ${f.floor.totalOverheadPercent.toFixed(1)}%.`,
      "",
    );
    out.push("| call | size | n | backend | raw | overhead (median) |");
    out.push("|---|---|---:|---:|---:|---:|");
    for (const c of f.floor.calls.slice(0, 14)) {
      out.push(`| ${c.call} | ${sizeName(c.bytes)} | ${c.backend.n} | ${us(c.backend)} | ${us(c.raw)} | ${c.overheadPercent.toFixed(1)}% (${(c.backend.medianUs - c.raw.medianUs).toFixed(2)} us) |`);
    }
    const s = f.floor.stitchPerChunk;
    if (s.n > 0) out.push("", `Map N 2 MiB chunks into one range + setAccess over it, per chunk (${s.n} times): backend ${us(s.backend)}, raw ${us(s.raw)}.`);
    if (f.cached) {
      const c = f.cached;
      out.push(
        "",
        "| policy call (from JS, one at a time) | n | median / p99 (us) |",
        "|---|---:|---:|",
        `| allocation served from the cache | ${c.cachedAlloc?.n ?? 0} | ${us(c.cachedAlloc)} |`,
        `| free into the cache | ${c.cachedFree?.n ?? 0} | ${us(c.cachedFree)} |`,
        `| allocation that made driver calls | ${c.allocWithDriverCalls?.n ?? 0} | ${us(c.allocWithDriverCalls)} |`,
        `| free that made driver calls | ${c.freeWithDriverCalls?.n ?? 0} | ${us(c.freeWithDriverCalls)} |`,
        "",
        `Left after teardown: ${c.leaksAfterTeardown}.`,
      );
    }
    out.push("");
  }
  return out.join("\n");
}
