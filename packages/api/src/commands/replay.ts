import { loadTrace } from "../load.js";
import { startProgress } from "../progress.js";
import { POLICIES, replayTrace, type PolicyName } from "../replay.js";
import { renderTable } from "../table.js";
import { formatBytes, formatCount, parseBytes } from "../units.js";
import { writeHuman, writeJson } from "../output.js";
import { findMinCapacity } from "../capacity-search.js";

export interface ReplayCliOptions {
  policy?: string;
  conf?: string;
  capacity?: string;
  json?: boolean;
  check?: boolean;
  findMinCapacity?: boolean;
}

export function parsePolicy(name: string | undefined): PolicyName | undefined {
  if (name === undefined) return undefined;
  if (!(POLICIES as readonly string[]).includes(name)) {
    throw new Error(`--policy: unknown policy '${name}' (choose one of ${POLICIES.join(", ")})`);
  }
  return name as PolicyName;
}

export async function replayCommand(file: string, options: ReplayCliOptions): Promise<number> {
  const policy = parsePolicy(options.policy);
  const capacityBytes = options.capacity === undefined ? undefined : parseBytes(options.capacity, "--capacity");
  const trace = await loadTrace(file, !options.json);
  const progress = startProgress(`replay ${policy ?? ""}`.trim(), "events", !options.json);
  let document;
  try {
    ({ document } = replayTrace(trace, {
      policy,
      conf: options.conf,
      capacityBytes,
      checkEvery: options.check ? 1 : 0,
      onProgress: (done, total) => progress.update(done, total),
    }));
  } finally {
    progress.stop();
  }
  if (options.findMinCapacity) {
    const mins = findMinCapacity(trace, { policy: document.policy, conf: options.conf });
    document.devices = document.devices.map((d, i) => ({ ...d, minCapacityBytes: mins[i].minCapacityBytes }));
  }
  if (options.json) {
    writeJson(document);
    return 0;
  }
  writeHuman(
    [
      `${file}: policy ${document.policy}${document.conf ? ` (${document.conf})` : ""}, capacity ${document.capacityBytes === null ? "unlimited" : formatBytes(document.capacityBytes)}`,
      renderTable(
        ["device", "events", "peak allocated", "peak reserved", "reserved/allocated", "device allocs", "device frees", "OOMs", "allocator time", ...(options.findMinCapacity ? ["min capacity"] : [])],
        document.devices.map((d) => [
          d.device,
          formatCount(d.events),
          formatBytes(d.peakAllocatedBytes),
          formatBytes(d.peakReservedBytes),
          d.peakAllocatedBytes > 0 ? (d.peakReservedBytes / d.peakAllocatedBytes).toFixed(3) : "n/a",
          formatCount(d.deviceAllocs),
          formatCount(d.deviceFrees),
          d.ooms,
          `${(d.allocatorSeconds * 1000).toFixed(1)} ms`,
          ...(options.findMinCapacity ? [d.minCapacityBytes === undefined || Number.isNaN(d.minCapacityBytes) ? "n/a" : formatBytes(d.minCapacityBytes)] : []),
        ]),
      ),
      `replayed ${formatCount(document.events)} events in ${document.seconds.toFixed(3)} s (${formatCount(Math.round(document.events / Math.max(document.seconds, 1e-9)))} events/s)`,
    ].join("\n"),
  );
  return 0;
}
