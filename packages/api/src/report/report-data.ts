/**
 * What the HTML report shows, computed in Node and embedded in the page as JSON. The page draws it
 * with no network access: everything it needs, charting library included, is inside the one file.
 */
export interface ReportData {
  title: string;
  file: string;
  generatedAt: string;
  events: number;
  /** what the replays could not reproduce (private memory pools), in words; shown above the charts */
  caveats: string[];
  policies: PolicyReport[];
  /** `lakebed tiering --html`: per device, tiering's stall against capacity (tiering/tiering-sweep.ts) */
  tiering?: TieringCurve[];
}

/** One device's stall-capacity curve, as the page draws it. Bytes, seconds; null where the trace does not run. */
export interface TieringCurve {
  device: number;
  computeSeconds: number;
  lakebedMinCapacityBytes: number;
  minCapacityBytes: { online: number; belady: number };
  stallTargetCapacityBytes: { online: number; belady: number };
  capacityBytes: number[];
  onlineStallSeconds: (number | null)[];
  beladyStallSeconds: (number | null)[];
}

export interface PolicyReport {
  policy: string;
  /** the policy's one line from core-sim's registry */
  description: string;
  device: number;
  peakAllocatedBytes: number;
  peakReservedBytes: number;
  /** null when the search was not run */
  minCapacityBytes: number | null;
  ooms: number;
  driverCalls: Record<string, number>;
  allocatorSeconds: number;
  /** reserved and allocated bytes at the moment of peak reserved memory */
  atPeak: { eventIndex: number; reservedBytes: number; allocatedBytes: number };
  /** reserved and allocated bytes over the trace: per window of events, the highest value in it */
  timeline: { eventIndex: number[]; allocatedBytes: number[]; reservedBytes: number[] };
  /** the segment layout at the moment of peak reserved memory */
  layoutAtPeak: SegmentLayout[];
}

export interface SegmentLayout {
  address: number;
  sizeBytes: number;
  pool: "small" | "large";
  expandable: boolean;
  /** blocks in address order: offset from the segment base, size, and whether it is allocated */
  blocks: { offsetBytes: number; sizeBytes: number; allocated: boolean }[];
}
