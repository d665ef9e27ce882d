import type { SegmentState, Trace } from "@lakebed/traces";
import { policyEntry } from "@lakebed/core-sim";
import { findMinCapacity } from "../capacity-search.js";
import { privatePoolCaveat } from "../caveats.js";
import { replayTrace, type PolicyName } from "../replay.js";
import type { PolicyReport, ReportData, SegmentLayout } from "./report-data.js";

/** Points per timeline: enough to see every phase of a training step, small enough for any browser. */
const TIMELINE_POINTS = 2000;

export interface ReportRequest {
  policies: PolicyName[];
  conf?: string;
  capacityBytes?: number;
  /** minimum capacities already searched, per policy and device; searched here when absent */
  minCapacities?: Map<PolicyName, number[]>;
  findMinCapacity?: boolean;
}

/**
 * Replays the trace once per policy to get its timeline and the moment of peak reserved memory,
 * then once more up to that moment to capture the segment layout there.
 */
export function buildReport(trace: Trace, request: ReportRequest): ReportData {
  const policies: PolicyReport[] = [];
  for (const policy of request.policies) {
    const common = { policy, conf: request.conf, capacityBytes: request.capacityBytes };
    const { results } = replayTrace(trace, { ...common, timelinePoints: TIMELINE_POINTS });
    const mins = request.minCapacities?.get(policy) ?? (request.findMinCapacity ? findMinCapacity(trace, common).map((m) => m.minCapacityBytes) : null);
    results.forEach((r, i) => {
      const device = trace.devices[i];
      const single: Trace = { ...trace, devices: [device] };
      const peakIndex = r.peakReservedEventIndex;
      const atPeak = replayTrace(single, { ...common, layoutAtEvent: peakIndex }).results[0];
      const layout = atPeak.layoutAtEvent ?? [];
      policies.push({
        policy,
        description: policyEntry(policy).description,
        device: r.device,
        peakAllocatedBytes: r.peakAllocatedBytes,
        peakReservedBytes: r.peakReservedBytes,
        minCapacityBytes: mins ? mins[i] : null,
        ooms: r.ooms,
        driverCalls: r.driverCalls,
        allocatorSeconds: r.allocatorSeconds,
        atPeak: {
          eventIndex: peakIndex,
          reservedBytes: layout.reduce((n, s) => n + s.totalSize, 0),
          allocatedBytes: layout.reduce((n, s) => n + s.blocks.filter((b) => b.state !== "inactive").reduce((m, b) => m + b.size, 0), 0),
        },
        timeline: r.timeline ?? { eventIndex: [], allocatedBytes: [], reservedBytes: [] },
        layoutAtPeak: layout.map(toLayout),
      });
    });
  }
  return {
    title: `lakebed: ${trace.file.split("/").pop()}`,
    file: trace.file,
    generatedAt: new Date().toISOString(),
    events: trace.devices.reduce((n, d) => n + d.events.length, 0),
    caveats: [privatePoolCaveat(trace)].filter((c): c is string => c !== null),
    policies,
  };
}

function toLayout(s: SegmentState): SegmentLayout {
  return {
    address: s.address,
    sizeBytes: s.totalSize,
    pool: s.pool,
    expandable: s.expandable,
    blocks: s.blocks.map((b) => ({ offsetBytes: b.address - s.address, sizeBytes: b.size, allocated: b.state !== "inactive" })),
  };
}
