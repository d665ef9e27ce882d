import { loadTrace } from "../load.js";
import { warnAboutCaveats } from "../caveats.js";
import { startProgress } from "../progress.js";
import { findMinCapacity } from "../capacity-search.js";
import { replayTrace, type ReplayDocument } from "../replay.js";
import { renderTable } from "../table.js";
import { formatBytes, formatCount } from "../units.js";
import { writeHuman, writeJson } from "../output.js";
import { parseCapacity, parseConf, parsePolicyList } from "./option-values.js";
import { printable } from "../terminal-text.js";
import { writeFileSync } from "node:fs";

export interface CompareCliOptions {
  policies?: string;
  conf?: string;
  capacity?: string;
  findMinCapacity?: boolean;
  json?: boolean;
  html?: string;
}

/** A replay document with the minimum capacity per device, when it was searched for. */
export type CompareResult = ReplayDocument & { devices: (ReplayDocument["devices"][number] & { minCapacityBytes?: number })[] };

export async function compareCommand(file: string, options: CompareCliOptions): Promise<number> {
  const policies = parsePolicyList(options.policies);
  const capacityBytes = parseCapacity(options.capacity);
  parseConf(options.conf);
  const trace = await loadTrace(file, !options.json);
  warnAboutCaveats(trace);
  const results: CompareResult[] = [];
  for (const policy of policies) {
    const progress = startProgress(`replay ${policy}`, "events", !options.json);
    try {
      const { document } = replayTrace(trace, { policy, conf: options.conf, capacityBytes, onProgress: (d, t) => progress.update(d, t) });
      const result: CompareResult = document;
      if (options.findMinCapacity) {
        progress.stop();
        const search = startProgress(`min capacity ${policy}`, "replays", !options.json);
        const mins = findMinCapacity(trace, { policy, conf: options.conf }, (d, t) => search.update(d, t));
        search.stop();
        result.devices = result.devices.map((d, i) => ({ ...d, minCapacityBytes: mins[i].minCapacityBytes }));
      }
      results.push(result);
    } finally {
      progress.stop();
    }
  }
  if (options.html) {
    const minCapacities = options.findMinCapacity
      ? new Map(results.map((r) => [r.policy, r.devices.map((d) => d.minCapacityBytes ?? Number.NaN)] as const))
      : undefined;
    // the report (its page, script and chart library) is loaded only when one is asked for
    const [{ buildReport }, { renderHtmlReport }] = await Promise.all([import("../report/build-report.js"), import("../report/html-report.js")]);
    const data = buildReport(trace, { policies, conf: options.conf, capacityBytes, minCapacities });
    writeFileSync(options.html, renderHtmlReport(data));
    if (!options.json) process.stderr.write(`lakebed: wrote ${printable(options.html)}\n`);
  }
  if (options.json) {
    writeJson({ results });
    return 0;
  }
  const head = ["policy", "device", "peak allocated", "peak reserved", "reserved/allocated", "device allocs", "device frees", "OOMs", "allocator time"];
  if (options.findMinCapacity) head.push("min capacity");
  writeHuman(
    renderTable(
      head,
      results.flatMap((r) =>
        r.devices.map((d) => {
          const row = [
            r.policy,
            d.device,
            formatBytes(d.peakAllocatedBytes),
            formatBytes(d.peakReservedBytes),
            d.peakAllocatedBytes > 0 ? (d.peakReservedBytes / d.peakAllocatedBytes).toFixed(3) : "n/a",
            formatCount(d.deviceAllocs),
            formatCount(d.deviceFrees),
            d.ooms,
            `${(d.allocatorSeconds * 1000).toFixed(1)} ms`,
          ];
          if (options.findMinCapacity) row.push(d.minCapacityBytes === undefined || Number.isNaN(d.minCapacityBytes) ? "n/a" : formatBytes(d.minCapacityBytes));
          return row;
        }),
      ),
    ),
  );
  return 0;
}
