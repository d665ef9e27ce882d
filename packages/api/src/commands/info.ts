import { describeTrace } from "../describe.js";
import { loadTrace } from "../load.js";
import { privatePoolCaveat } from "../caveats.js";
import { renderTable } from "../table.js";
import { formatBytes } from "../units.js";
import type { AccessCoverage } from "@lakebed/traces";
import { writeJson, writeHuman } from "../output.js";
import { printable } from "../terminal-text.js";

export async function infoCommand(file: string, options: { json?: boolean }): Promise<number> {
  const trace = await loadTrace(file, !options.json, { withAccess: true });
  const info = describeTrace(trace);
  if (options.json) {
    writeJson(info);
    return 0;
  }
  const s = info.allocatorSettings;
  const lines = [
    `${printable(info.file)}: ${info.format}${info.gzip ? " (gzip)" : ""}${info.legacy ? ", legacy PyTorch 2.0 layout" : ""}`,
    s
      ? `settings: ${s.conf === "" ? "(PYTORCH_CUDA_ALLOC_CONF empty)" : printable(s.conf)}; expandable_segments ${s.expandableSegments}, max_split_size ${s.maxSplitSize < 0 ? "unlimited" : formatBytes(s.maxSplitSize)}, garbage_collection_threshold ${s.garbageCollectionThreshold}, roundup_power2_divisions [${s.roundupPower2Divisions.join(",")}]`
      : "settings: not recorded (PyTorch before about 2.3): replays assume PyTorch's defaults",
    renderTable(
      ["device", "events", "allocs", "streams", "span", "complete", "start state", "final reserved", "final allocated"],
      info.devices.map((d) => [
        d.device,
        d.events,
        d.actions.alloc ?? 0,
        d.streams.length,
        d.seconds === null ? "n/a" : `${d.seconds.toFixed(2)} s`,
        d.complete ? "yes" : "no",
        d.complete ? "empty" : `${d.initialSegments} segments, ${formatBytes(d.initialReservedBytes)}, ${d.initialLiveBlocks} live`,
        formatBytes(d.finalReservedBytes),
        formatBytes(d.finalAllocatedBytes),
      ]),
    ),
  ];
  for (const d of info.devices) if (d.access !== undefined) lines.push(...coverageLines(d.device, d.access));
  const caveat = privatePoolCaveat(trace);
  if (caveat !== null) lines.push(`note: ${printable(caveat)}`);
  writeHuman(lines.join("\n"));
  return 0;
}

/** What the use events of one device cover: the share of allocated byte-seconds whose accesses are known, and what is not seen. */
function coverageLines(device: number, c: AccessCoverage): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const j = c.join;
  const placed = j.resultsUnmatched + j.tensorsUnresolved + j.operatorsBeforeTrace === 0 ? "all placed" : `${j.resultsUnmatched} results not found as allocs, ${j.tensorsUnresolved} tensors in no live block, ${j.operatorsBeforeTrace} operators before the trace`;
  const unseen = c.unseen.slice(0, 4).map((g) => `${g.allocatedDuring} ${g.blocks} block${g.blocks === 1 ? "" : "s"} ${formatBytes(g.bytes)} (${pct(g.share)})`);
  return [
    `accesses, device ${device}: ${c.operators} operators, ${c.uses} uses (${placed}); known for ${pct(c.knownShare)} of allocated byte-seconds (operators' tensors ${pct(c.touchedShare)}, scratch inside an operator ${pct(c.scratchShare)})`,
    `  not seen ${pct(c.unseenShare)}${unseen.length === 0 ? "" : `, by the operator that allocated it: ${unseen.join(", ")}${c.unseen.length > 4 ? ", ..." : ""}`}`,
  ];
}
