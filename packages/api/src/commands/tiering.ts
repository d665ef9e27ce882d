import { writeFileSync } from "node:fs";
import { useEventsMissing, type ClockCalibration } from "@lakebed/core-sim";
import { loadTrace } from "../load.js";
import { startProgress } from "../progress.js";
import { renderTable } from "../table.js";
import { formatBytes } from "../units.js";
import { writeHuman, writeJson } from "../output.js";
import { printable } from "../terminal-text.js";
import { UsageError, quoted } from "../usage-error.js";
import { parseConf } from "./option-values.js";
import { clockCalibrationBeside } from "../tiering/clock-calibration.js";
import { STALL_SHARE_TARGET, tieringSweep, type TieringSweep } from "../tiering/tiering-sweep.js";

export interface TieringCliOptions {
  conf?: string;
  points?: string;
  html?: string;
  json?: boolean;
}

/** The document `lakebed tiering --json` prints. */
export interface TieringDocument {
  file: string;
  /** the plain step time the clock was scaled to (NAME.stats.json beside the trace); null: none, the clock as recorded */
  clockCalibration: ClockCalibration | null;
  stallShareTarget: number;
  devices: TieringSweep[];
}

const seconds = (s: number | undefined) => (s === undefined || Number.isNaN(s) ? "n/a" : `${(s * 1000).toFixed(1)} ms`);
const bytes = (b: number) => (Number.isNaN(b) ? "n/a" : formatBytes(b));

export async function tieringCommand(file: string, options: TieringCliOptions): Promise<number> {
  const conf = parseConf(options.conf);
  const points = options.points === undefined ? 12 : Number(options.points);
  if (!Number.isInteger(points) || points < 2 || points > 200) throw new UsageError(`--points takes a whole number from 2 to 200, not ${quoted(options.points ?? "")}`);
  const trace = await loadTrace(file, !options.json, { withAccess: true });
  for (const d of trace.devices) {
    const missing = useEventsMissing(d, "tiering");
    if (missing) throw new Error(`${file}: ${missing}`);
  }
  const clockCalibration = clockCalibrationBeside(file);
  const progress = startProgress("tiering sweep", "replays", !options.json);
  let devices: TieringSweep[];
  try {
    devices = tieringSweep(trace, { conf, points, clockCalibration, onProgress: (done, total) => progress.update(done, total) });
  } finally {
    progress.stop();
  }
  const document: TieringDocument = { file, clockCalibration: clockCalibration ?? null, stallShareTarget: STALL_SHARE_TARGET, devices };
  if (options.html) {
    const [{ buildTieringReport }, { renderHtmlReport }] = await Promise.all([import("../report/tiering-report.js"), import("../report/html-report.js")]);
    writeFileSync(options.html, renderHtmlReport(buildTieringReport(trace, document)));
    if (!options.json) process.stderr.write(`lakebed: wrote ${printable(options.html)}\n`);
  }
  if (options.json) {
    writeJson(document);
    return 0;
  }
  const lines: string[] = [];
  for (const d of devices) {
    lines.push(
      `${printable(file)} device ${d.device}: computation ${seconds(d.computeSeconds)}, peak allocated ${bytes(d.peakAllocatedBytes)}; lakebed needs ${bytes(d.lakebedMinCapacityBytes)} without tiering`,
      `runs at all from ${bytes(d.minCapacityBytes.online)} (online), ${bytes(d.minCapacityBytes.belady)} (belady); stall under ${STALL_SHARE_TARGET * 100}% of the computation from ${bytes(d.stallTargetCapacityBytes.online)} (online), ${bytes(d.stallTargetCapacityBytes.belady)} (belady)`,
      renderTable(
        ["capacity", "online stall", "belady stall", "online/belady", "online moved out/in", "belady moved out/in", "peak host (online)"],
        d.points.map((p) => [
          formatBytes(p.capacityBytes),
          p.online ? seconds(p.online.stallSeconds) : "does not run",
          p.belady ? seconds(p.belady.stallSeconds) : "does not run",
          p.online && p.belady && p.belady.stallSeconds > 0 ? (p.online.stallSeconds / p.belady.stallSeconds).toFixed(2) : "n/a",
          p.online ? `${formatBytes(p.online.bytesOut)} / ${formatBytes(p.online.bytesIn)}` : "",
          p.belady ? `${formatBytes(p.belady.bytesOut)} / ${formatBytes(p.belady.bytesIn)}` : "",
          p.online ? formatBytes(p.online.peakHostBytes) : "",
        ]),
      ),
    );
  }
  writeHuman(lines.join("\n"));
  return 0;
}
