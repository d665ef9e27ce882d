import { loadTrace } from "../load.js";
import { warnAboutCaveats } from "../caveats.js";
import { startProgress } from "../progress.js";
import { POLICIES, replayTrace, type PolicyName } from "../replay.js";
import { renderTable } from "../table.js";
import { formatBytes, formatCount, parseBytes } from "../units.js";
import { writeHuman, writeJson } from "../output.js";
import { findMinCapacity } from "../capacity-search.js";
import { isLive, parseBackend } from "../live/backend-options.js";
import { replayLiveCommand } from "./replay-live.js";

export interface ReplayCliOptions {
  policy?: string;
  conf?: string;
  capacity?: string;
  json?: boolean;
  check?: boolean;
  findMinCapacity?: boolean;
  /** sim (default), host or cuda: where the policy's device calls go */
  backend?: string;
  /** live backends: fill each allocation with a check pattern, check it before its free */
  verifyData?: boolean;
  /** live backends: fault injection, e.g. map:3,memCreate:5 */
  failEvery?: string;
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
  const backend = parseBackend(options.backend);
  if (!isLive(backend) && (options.verifyData || options.failEvery !== undefined)) {
    throw new Error(`${options.verifyData ? "--verify-data" : "--fail-every"} needs a live backend (--backend host or --backend cuda)`);
  }
  if (isLive(backend) && options.findMinCapacity) throw new Error("--find-min-capacity runs on the simulator only (leave out --backend)");
  const trace = await loadTrace(file, !options.json);
  warnAboutCaveats(trace);
  if (isLive(backend)) {
    const progress = startProgress(`replay ${policy ?? ""} on ${backend}`.replace("  ", " "), "events", !options.json);
    return replayLiveCommand(
      trace,
      {
        file,
        backend,
        policy,
        conf: options.conf,
        capacityBytes,
        verifyData: options.verifyData === true,
        check: options.check === true,
        failEvery: options.failEvery,
        json: options.json === true,
      },
      progress,
    );
  }
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
