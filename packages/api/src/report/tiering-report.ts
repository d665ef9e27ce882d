import type { Trace } from "@lakebed/traces";
import type { TieringDocument } from "../commands/tiering.js";
import type { ReportData } from "./report-data.js";

/** The HTML report of `lakebed tiering --html`: the stall-capacity curves, no per-policy sections. */
export function buildTieringReport(trace: Trace, document: TieringDocument): ReportData {
  return {
    title: `lakebed tiering: ${trace.file.split("/").pop()}`,
    file: trace.file,
    generatedAt: new Date().toISOString(),
    events: trace.devices.reduce((n, d) => n + d.events.length, 0),
    caveats: [],
    policies: [],
    tiering: document.devices.map((d) => ({
      device: d.device,
      computeSeconds: d.computeSeconds,
      lakebedMinCapacityBytes: d.lakebedMinCapacityBytes,
      minCapacityBytes: d.minCapacityBytes,
      stallTargetCapacityBytes: d.stallTargetCapacityBytes,
      capacityBytes: d.points.map((p) => p.capacityBytes),
      onlineStallSeconds: d.points.map((p) => p.online?.stallSeconds ?? null),
      beladyStallSeconds: d.points.map((p) => p.belady?.stallSeconds ?? null),
    })),
  };
}
