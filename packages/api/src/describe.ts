import { accessCoverage, Action, ACTION_NAMES, type AccessCoverage, type DeviceTrace, type PrivatePoolUse, type Trace } from "@lakebed/traces";

/** What `lakebed info` reports about a trace: enough to decide whether and how to replay it. */
export interface TraceInfo {
  file: string;
  format: string;
  gzip: boolean;
  legacy: boolean;
  /** PyTorch's allocator settings as recorded; null for files from before PyTorch recorded them */
  allocatorSettings: Trace["allocatorSettings"];
  devices: DeviceInfo[];
}

export interface DeviceInfo {
  device: number;
  events: number;
  /** events per action name (alloc, free_requested, segment_alloc, ...) */
  actions: Record<string, number>;
  streams: string[];
  /** first and last recorded time, microseconds since the epoch; null without time_us */
  firstTimeUs: number | null;
  lastTimeUs: number | null;
  seconds: number | null;
  /** true when the trace starts from an empty allocator */
  complete: boolean;
  /** what was already live or cached when the first kept event happened */
  initialSegments: number;
  initialReservedBytes: number;
  initialLiveBlocks: number;
  finalSegments: number;
  finalReservedBytes: number;
  finalAllocatedBytes: number;
  /** private memory pools (CUDA graphs, MemPool) that segments of the final snapshot belong to */
  privatePools: PrivatePoolUse[];
  /** only for a trace with use events (an operator record joined to it): what they cover */
  access?: AccessCoverage;
}

export function describeTrace(trace: Trace): TraceInfo {
  return {
    file: trace.file,
    format: trace.format,
    gzip: trace.gzip,
    legacy: trace.legacy,
    allocatorSettings: trace.allocatorSettings,
    devices: trace.devices.map(describeDevice),
  };
}

function describeDevice(d: DeviceTrace): DeviceInfo {
  const { events } = d;
  const actions: Record<string, number> = {};
  for (let i = 0; i < events.length; i++) {
    const name = ACTION_NAMES[events.action[i] as Action] ?? "other";
    actions[name] = (actions[name] ?? 0) + 1;
  }
  let first = NaN;
  let last = NaN;
  for (let i = 0; i < events.length; i++) {
    const t = events.timeUs[i];
    if (Number.isNaN(t)) continue;
    if (Number.isNaN(first)) first = t;
    last = t;
  }
  const timed = !Number.isNaN(first);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    device: d.device,
    events: events.length,
    actions,
    streams: d.streams.map((s) => s.toString()),
    firstTimeUs: timed ? first : null,
    lastTimeUs: timed ? last : null,
    seconds: timed ? (last - first) / 1e6 : null,
    complete: d.complete,
    initialSegments: d.initialState.length,
    initialReservedBytes: sum(d.initialState.map((s) => s.totalSize)),
    initialLiveBlocks: d.initialLiveBlocks,
    finalSegments: d.finalState.length,
    finalReservedBytes: sum(d.finalState.map((s) => s.totalSize)),
    finalAllocatedBytes: sum(
      d.finalState.flatMap((s) => s.blocks.filter((b) => b.state === "allocated").map((b) => b.size)),
    ),
    privatePools: d.privatePools,
    ...(d.access === undefined ? {} : { access: accessCoverage(d)! }),
  };
}

/** Number of allocation requests (alloc and oom entries) a device's trace holds. */
export function allocationEvents(d: DeviceTrace): number {
  let n = 0;
  for (let i = 0; i < d.events.length; i++) {
    const a = d.events.action[i];
    if (a === Action.Alloc || a === Action.Oom) n++;
  }
  return n;
}
