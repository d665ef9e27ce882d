import { readScenario } from "../colocate/scenario.js";
import { runColocate, type ColocateResult } from "../colocate/run-colocate.js";
import { startProgress } from "../progress.js";
import { renderTable } from "../table.js";
import { formatBytes } from "../units.js";
import { writeHuman, writeJson } from "../output.js";
import { printable } from "../terminal-text.js";
import { parseBackend } from "../live/backend-options.js";
import { UsageError } from "../usage-error.js";

/** `lakebed colocate SCENARIO`: the scenario's tenants on one device, under each strategy. */
export async function colocateCommand(file: string, options: { json?: boolean; html?: string; backend?: string; verifyData?: boolean; device?: string; handoverAcquire?: string; handoverIterations?: string }): Promise<number> {
  const backend = parseBackend(options.backend);
  if (backend !== "sim") {
    if (options.html) throw new UsageError("--html draws the simulated strategies: it goes with --backend sim, not a live run");
    // the live half: real processes on a driver (docs/colocate.md)
    const { colocateLiveCommand } = await import("../colocate/live/live-command.js");
    return colocateLiveCommand(file, backend, options);
  }
  const scenario = readScenario(file);
  const progress = startProgress("colocate", "simulated ms", !options.json);
  let result: ColocateResult;
  try {
    // progress in simulated milliseconds, over every run in turn
    result = await runColocate(scenario, {
      showProgress: !options.json,
      onProgress: (run, runs, doneUs, totalUs) => progress.update((run * totalUs + doneUs) / 1000, (runs * totalUs) / 1000),
    });
  } finally {
    progress.stop();
  }
  if (options.html) {
    const { writeColocateReport } = await import("../report/colocate-report.js");
    writeColocateReport(result, options.html);
  }
  if (options.json) {
    writeJson(result);
    return 0;
  }
  const ms = (us: number) => `${(us / 1000).toFixed(3)} ms`;
  const r = result.reserve;
  writeHuman(
    [
      `${printable(file)}: ${result.tenants.length} tenants on ${formatBytes(result.capacityBytes)} for ${result.durationS} s; SLO ${result.sloMs} ms to acquire memory`,
      `reserve W ${formatBytes(r.watermarkBytes)} (${r.planned ? `planned: estimated ${(100 * r.estimatedSloShare).toFixed(1)}% within the SLO, ${(100 * r.sloShareWithoutReserve).toFixed(1)}% without a reserve` : "from the scenario"}), T_idle ${result.idleS} s`,
      renderTable(
        ["strategy", "requests", "failed", "acquire p50", "p99", "within SLO", "handovers", "handover p50", "p99", "steps done", "steps lost", "training gave up", "training mean", "inference mean", "peak in use"],
        result.runs.map((x) => [
          x.dedup ? `${x.strategy}+dedup` : x.strategy,
          x.requests,
          x.failedRequests,
          ms(x.acquireP50Us),
          ms(x.acquireP99Us),
          `${(100 * x.withinSloShare).toFixed(1)}%`,
          x.handovers.length,
          ms(x.handoverP50Us),
          ms(x.handoverP99Us),
          x.trainingStepsCompleted,
          x.trainingStepsLost,
          formatBytes(x.trainingGaveUpBytes),
          formatBytes(x.trainingMeanBytes),
          formatBytes(x.inferenceMeanBytes),
          formatBytes(x.peakUsedBytes),
        ]),
      ),
      `1 GiB to inference by the cost model: ${ms(result.costs.handover1GiBFromReserveUs)} from the reserve (zero-fill), ${ms(result.costs.handover1GiBByAdjustUs)} by an adjustment, ${ms(result.costs.freeThenMalloc1GiBUs)} free-then-malloc plus the wait for training's step (Sirius: 0.8 ms with zero-fill, about 250 ms naive)`,
      ...dedupLines(result),
      options.html ? `report: ${printable(options.html)}` : "",
    ]
      .filter((l) => l !== "")
      .join("\n"),
  );
  return 0;
}

/** The dedup figures, where the tenants have fingerprints. */
function dedupLines(result: ColocateResult): string[] {
  const d = result.dedup;
  if (d === null) return [];
  const f = d.figure;
  const lines = [
    `dedup of read-only chunks (${d.tenants.length} tenants with fingerprints): ${formatBytes(f.withoutBytes)} alone, ${formatBytes(f.withBytes)} with shared parameter chunks (${f.ratio.toFixed(3)} x; ${f.sharedChunks} shared chunks; GLake: 13.2 -> 4.6 GB for 6 processes, 0.35 x)`,
  ];
  if (d.sweep.length > 0) {
    lines.push(
      renderTable(
        [`copies of ${printable(d.sweepOf ?? "")}`, "alone", "dedup", "ratio"],
        d.sweep.map((x) => [x.tenants, formatBytes(x.withoutBytes), formatBytes(x.withBytes), x.ratio.toFixed(3)]),
      ),
    );
  }
  return lines;
}
