import { loadTrace } from "../load.js";
import { accessRecordBeside, withAccessRecord } from "@lakebed/traces";
import { warnAboutCaveats } from "../caveats.js";
import { startProgress } from "../progress.js";
import { POLICY_SOURCE_TEXT, replayTrace, resolvePolicy, type PolicyName, type ReplayDocument, type TieringSummary } from "../replay.js";
import type { ShrinkRequest } from "@lakebed/core-sim";
import { renderTable } from "../table.js";
import { formatBytes, formatCount } from "../units.js";
import { writeHuman, writeJson } from "../output.js";
import { findMinCapacity } from "../capacity-search.js";
import { isLive, parseBackend, parseFailEvery } from "../live/backend-options.js";
import { parseCapacity, parseConf, parsePolicy } from "./option-values.js";
import { UsageError, quoted } from "../usage-error.js";
import { printable } from "../terminal-text.js";
import { policyEntry, useEventsMissing, type PolicyEntry } from "@lakebed/core-sim";
import { clockCalibrationBeside } from "../tiering/clock-calibration.js";

export interface ReplayCliOptions {
  policy?: string;
  conf?: string;
  capacity?: string;
  json?: boolean;
  /** true (no value) or "local": local checks and the periodic whole walk; "full": the walk after every event */
  check?: boolean | string;
  findMinCapacity?: boolean;
  /** sim (default), host or cuda: where the policy's device calls go */
  backend?: string;
  /** live backends: fill each allocation with a check pattern, check it before its free */
  verifyData?: boolean;
  /** live backends: fault injection, e.g. map:3,memCreate:5 */
  failEvery?: string;
  /** tiering: serverless shrink at idle gaps of at least this many ms of computation */
  shrinkIdle?: string;
  /** tiering: serverless shrink right before these events (comma-separated indexes) */
  shrinkAt?: string;
  /** tiering: block ids (comma-separated) a shrink may drop instead of copying */
  shrinkDiscard?: string;
  /** live backends: shrink and refill the whole process before this event, or `peak` */
  liveShrinkAt?: string;
}

/** --live-shrink-at: a trace event (1 or more) or `peak`. */
function parseLiveShrinkAt(text: string | undefined): number | "peak" | undefined {
  if (text === undefined || text === "peak") return text;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--live-shrink-at takes a trace event (1 or more) or peak, not ${quoted(text)}`);
  return n;
}

const SHRINK_NEEDS_USES = "--shrink-idle, --shrink-at and --shrink-discard need --policy tiering";

/** --shrink-idle, --shrink-at, --shrink-discard: undefined when none is given. (Only a policy that reads uses takes them: SHRINK_NEEDS_USES.) */
function parseShrink(options: ReplayCliOptions): ShrinkRequest | undefined {
  if (options.shrinkIdle === undefined && options.shrinkAt === undefined && options.shrinkDiscard === undefined) return undefined;
  const list = (text: string | undefined, option: string): number[] | undefined => {
    if (text === undefined) return undefined;
    const values = text.split(",").map((v) => v.trim());
    for (const v of values) if (!/^\d+$/.test(v)) throw new UsageError(`${option} takes comma-separated whole numbers, not ${quoted(text)}`);
    return values.map(Number);
  };
  let idleMs: number | undefined;
  if (options.shrinkIdle !== undefined) {
    idleMs = Number(options.shrinkIdle);
    if (!(idleMs > 0)) throw new UsageError(`--shrink-idle takes a number of milliseconds above 0, not ${quoted(options.shrinkIdle)}`);
  }
  if (idleMs === undefined && options.shrinkAt === undefined) throw new UsageError("--shrink-discard needs --shrink-idle or --shrink-at (where to shrink)");
  return { idleMs, atEvents: list(options.shrinkAt, "--shrink-at"), discardableBlockIds: list(options.shrinkDiscard, "--shrink-discard") };
}

/** What `--check [level]` asks of the replay (core-sim's checkLocal and checkEvery). */
export interface InvariantChecks {
  checkLocal: boolean;
  /** undefined: core-sim's period for the whole walk under checkLocal */
  checkEvery?: number;
}

function parseCheck(level: boolean | string | undefined): InvariantChecks {
  if (level === undefined || level === false) return { checkLocal: false };
  if (level === true || level === "local") return { checkLocal: true };
  if (level === "full") return { checkLocal: false, checkEvery: 1 };
  throw new UsageError(`--check takes local (the default) or full, not ${quoted(level)} (the trace file goes before --check)`);
}

/** Whether the policy reads use events (tiering): it needs the operator record beside the snapshot, and takes the shrinks. */
function readsUses(policy: PolicyName): boolean {
  return (policyEntry(policy) as PolicyEntry).readsUses === true;
}

export async function replayCommand(file: string, options: ReplayCliOptions): Promise<number> {
  const policy = parsePolicy(options.policy);
  const checks = parseCheck(options.check);
  const capacityBytes = parseCapacity(options.capacity);
  const conf = parseConf(options.conf);
  const backend = parseBackend(options.backend);
  if (!isLive(backend) && (options.verifyData || options.failEvery !== undefined)) {
    throw new UsageError(`${options.verifyData ? "--verify-data" : "--fail-every"} needs a live backend (--backend host or --backend cuda)`);
  }
  if (isLive(backend) && options.findMinCapacity) throw new UsageError("--find-min-capacity runs on the simulator only (leave out --backend)");
  if (!isLive(backend) && options.liveShrinkAt !== undefined) throw new UsageError("--live-shrink-at needs a live backend (--backend host or --backend cuda)");
  if (options.failEvery !== undefined) parseFailEvery(options.failEvery);
  const shrink = parseShrink(options);
  if (shrink && policy !== undefined && !readsUses(policy)) throw new UsageError(SHRINK_NEEDS_USES);
  // the policy replayed: --policy, else the one the snapshot names, else PyTorch's (resolvePolicy);
  // one that reads use events (tiering) needs the operator record beside the snapshot
  const read = await loadTrace(file, !options.json);
  const chosen = resolvePolicy(read, { policy, conf }).policy;
  const usesRead = readsUses(chosen);
  if (shrink && !usesRead) throw new UsageError(SHRINK_NEEDS_USES);
  const record = usesRead ? accessRecordBeside(file) : null;
  const trace = record === null ? read : withAccessRecord(read, record);
  if (usesRead) {
    for (const d of trace.devices) {
      const missing = useEventsMissing(d, chosen);
      if (missing) throw new Error(`${file}: ${missing}`);
    }
  }
  warnAboutCaveats(trace);
  if (isLive(backend)) {
    const progress = startProgress(`replay ${chosen} on ${backend}`, "events", !options.json);
    // the live path (native addon, drivers, teardown) is loaded only for a live replay
    const { replayLiveCommand } = await import("./replay-live.js");
    return replayLiveCommand(
      trace,
      {
        file,
        backend,
        policy,
        conf,
        capacityBytes,
        verifyData: options.verifyData === true,
        checks,
        failEvery: options.failEvery,
        json: options.json === true,
        clockCalibration: usesRead ? clockCalibrationBeside(file) : undefined,
        shrink,
        liveShrinkAt: parseLiveShrinkAt(options.liveShrinkAt),
        hostTier: usesRead,
      },
      progress,
    );
  }
  const progress = startProgress(`replay ${chosen}`, "events", !options.json);
  let document;
  try {
    ({ document } = replayTrace(trace, {
      policy,
      conf,
      capacityBytes,
      ...checks,
      clockCalibration: usesRead ? clockCalibrationBeside(file) : undefined,
      shrink,
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
      `${printable(file)}: ${policyWords(document)}, capacity ${document.capacityBytes === null ? "unlimited" : formatBytes(document.capacityBytes)}`,
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
      ...document.devices.flatMap((d) => (d.tiering ? [tieringLine(d.device, d.tiering)] : [])),
      `replayed ${formatCount(document.events)} events in ${document.seconds.toFixed(3)} s (${formatCount(Math.round(document.events / Math.max(document.seconds, 1e-9)))} events/s)`,
    ].join("\n"),
  );
  return 0;
}

/** The replay's policy, why that one, and its settings, as replay's first line says them (the live replay's too). */
export function policyWords(document: Pick<ReplayDocument, "policy" | "policySource" | "conf">): string {
  return `policy ${document.policy} (${POLICY_SOURCE_TEXT[document.policySource]})${document.conf ? `, settings ${printable(document.conf)}` : ""}`;
}

/** tiering's figures for one device, in a line. */
function tieringLine(device: number, t: TieringSummary): string {
  const ms = (s: number) => (Number.isNaN(s) ? "n/a" : `${(s * 1000).toFixed(1)} ms`);
  const share = t.computeSeconds > 0 && !Number.isNaN(t.stallSeconds) ? ` (${((100 * t.stallSeconds) / t.computeSeconds).toFixed(1)}% of ${ms(t.computeSeconds)} of computation)` : "";
  const runs = t.unservedUses > 0 ? `; does not run: ${formatCount(t.unservedUses)} operators' blocks did not fit the capacity` : "";
  const sh = t.shrink;
  const shrinkText = sh
    ? `; ${formatCount(sh.shrinks)} shrinks freed ${formatBytes(sh.freedBytes)} in all (${formatBytes(sh.droppedBytes)} dropped), shrink ${ms(sh.shrinkSeconds)}, refill ${ms(sh.refillSeconds)}, resident after a shrink at most ${formatBytes(sh.residentAfterBytes)}`
    : "";
  return `tiering, device ${device}: peak device ${formatBytes(t.peakDeviceBytes)}, peak host ${formatBytes(t.peakHostBytes)}, moved ${formatBytes(t.bytesOut)} out and ${formatBytes(t.bytesIn)} in, transfers ${ms(t.transferSeconds)}, estimated stall ${ms(t.stallSeconds)}${share}${runs}${shrinkText}`;
}
