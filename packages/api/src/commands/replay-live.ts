// `lakebed replay TRACE --backend host|cuda [--verify-data]`: the live replay's output. The JSON
// document is replay's, plus the backend, the driver, and per device the calls really made, the
// allocations verified, and what teardown left (`leaks`). Exit status 1 when a pattern changed
// (aliasing between live allocations) or anything was left after teardown.
//
// Where the host tier is used (a policy that moves memory to the host, tiering; or --live-shrink-at,
// the whole process shrunk and refilled), the same trace is also replayed on the simulator with the
// same options: the live calls must be its calls, call for call (else exit 1), and the document's
// `hostTier.simulated` gives the simulated device's host-tier figures (the Wasm's deviceHostBytes,
// deviceHostPeakBytes, deviceCopyOutMicros, deviceCopyInMicros: the H100 cost model) beside the
// measured ones. Exit 1 too when a byte changed across a copy to the host and back, or the arena
// was still held after teardown.
import type { Trace } from "@lakebed/traces";
import { DEVICE_CALL_NAMES, DeviceReplay, type ClockCalibration, type ShrinkRequest } from "@lakebed/core-sim";
import { LiveReplayError, replayLive, type LiveBackend, type LiveReplayDocument } from "../live/live-replay.js";
import { firstDivergence } from "../live/call-sequence.js";
import { resolvePolicy } from "../replay.js";
import { parseFailEvery } from "../live/backend-options.js";
import type { PolicyName } from "../replay.js";
import { policyWords, type InvariantChecks } from "./replay.js";
import { renderTable } from "../table.js";
import { formatBytes, formatCount } from "../units.js";
import { warn, writeHuman, writeJson } from "../output.js";
import type { Progress } from "../progress.js";
import { printable } from "../terminal-text.js";
import type { StartStateReport } from "@lakebed/core-sim";

export interface LiveCliRequest {
  file: string;
  backend: LiveBackend;
  policy?: PolicyName;
  conf?: string;
  capacityBytes?: number;
  verifyData: boolean;
  checks: InvariantChecks;
  failEvery?: string;
  json: boolean;
  /** tiering: the clock calibration and serverless shrinks, as the simulator's replay takes them */
  clockCalibration?: ClockCalibration;
  shrink?: ShrinkRequest;
  /** the whole process shrunk and refilled live before this trace event, or right after the peak */
  liveShrinkAt?: number | "peak";
  /** the policy moves memory to the host (tiering): compare with the simulator, report the host tier */
  hostTier: boolean;
}

/** The simulator's host-tier figures for one device (the Wasm's exports), and its calls. */
export interface SimulatedHostTier {
  arenaBytes: number;
  arenaPeakBytes: number;
  bytesOut: number;
  bytesIn: number;
  copyOutSeconds: number;
  copyInSeconds: number;
  /** the first live call that is not the simulator's (null: identical, call for call) */
  divergence: { index: number; expected: string; actual: string } | null;
  peakReservedEventIndex: number;
}

const CALL_COPY_OUT = DEVICE_CALL_NAMES.indexOf("copyOut");
const CALL_COPY_IN = DEVICE_CALL_NAMES.indexOf("copyIn");

/** The trace on the simulator, as the live replay runs it (start state materialized, its addresses). */
function simulate(trace: Trace, request: LiveCliRequest): Array<{ session: DeviceReplay; peakReservedEventIndex: number }> {
  const { policy, conf } = resolvePolicy(trace, request);
  return trace.devices.map((device) => {
    const session = new DeviceReplay(device, {
      policy,
      conf,
      capacityBytes: request.capacityBytes,
      traceAddresses: false,
      callLog: true,
      startState: "materialize",
      clockCalibration: request.clockCalibration,
      shrink: request.shrink,
    });
    while (!session.done) session.step();
    return { session, peakReservedEventIndex: session.result().peakReservedEventIndex };
  });
}
export async function replayLiveCommand(trace: Trace, request: LiveCliRequest, progress: Progress): Promise<number> {
  let document: LiveReplayDocument;
  let runs: Awaited<ReturnType<typeof replayLive>>["runs"];
  const compare = request.hostTier || request.liveShrinkAt !== undefined;
  const simulated = compare ? simulate(trace, request) : [];
  if (request.liveShrinkAt !== undefined && trace.devices.length !== 1) throw new Error(`${request.file}: --live-shrink-at takes a trace of one device (this one has ${trace.devices.length})`);
  // right after the event at which the simulator's reserved memory peaked
  const liveShrinkAt = request.liveShrinkAt === "peak" ? simulated[0].peakReservedEventIndex + 1 : request.liveShrinkAt;
  try {
    ({ document, runs } = await replayLive(trace, {
      backend: request.backend,
      policy: request.policy,
      conf: request.conf,
      capacityBytes: request.capacityBytes,
      verifyData: request.verifyData,
      ...request.checks,
      failEvery: request.failEvery === undefined ? undefined : parseFailEvery(request.failEvery),
      clockCalibration: request.clockCalibration,
      shrink: request.shrink,
      liveShrinkAt,
      onProgress: (done, total) => progress.update(done, total),
    }));
  } catch (e) {
    // one line naming the file, as every other failure of the CLI
    if (e instanceof LiveReplayError) throw new Error(`${request.file}: ${e.message}`);
    throw e;
  } finally {
    progress.stop();
  }
  const sims: SimulatedHostTier[] = simulated.map(({ session, peakReservedEventIndex }, i) => {
    const w = session.wasm;
    const log = session.result().callLog!;
    return {
      arenaBytes: w.deviceHostBytes(),
      arenaPeakBytes: w.deviceHostPeakBytes(),
      bytesOut: w.deviceCallBytes(CALL_COPY_OUT),
      bytesIn: w.deviceCallBytes(CALL_COPY_IN),
      copyOutSeconds: w.deviceCopyOutMicros() / 1e6,
      copyInSeconds: w.deviceCopyInMicros() / 1e6,
      divergence: firstDivergence(log, runs[i].calls),
      peakReservedEventIndex,
    };
  });
  sims.forEach((s, i) => {
    const d = document.devices[i];
    if (d.hostTier) (d.hostTier as typeof d.hostTier & { simulated?: SimulatedHostTier }).simulated = s;
    else if (compare) (d as typeof d & { simulated?: SimulatedHostTier }).simulated = s;
  });
  const leaked = document.devices.some((d) => d.leaks.handles + d.leaks.reservations + d.leaks.mappings + d.leaks.mallocs > 0 || (d.hostTier?.arenaLeftAfterTeardown ?? 0) > 0);
  const corrupted = document.devices.some((d) => (d.verifyFailures ?? 0) > 0);
  const changedInTransit = document.devices.some((d) => (d.hostTier?.roundTrip?.failures ?? 0) > 0 || d.hostTier?.liveShrinks?.some((s) => s.changedBytes > 0));
  const diverged = sims.some((s) => s.divergence !== null);
  if (request.json) {
    writeJson(document);
  } else {
    writeHuman(
      [
        `${printable(request.file)}: ${policyWords(document)}, live on ${document.driver}`,
        renderTable(
          ["device", "events", "peak allocated", "peak reserved", "device calls", "OOMs", ...(request.verifyData ? ["verified allocations", "pattern changed"] : []), "left after teardown"],
          document.devices.map((d) => [
            d.device,
            formatCount(d.events),
            formatBytes(d.peakAllocatedBytes),
            formatBytes(d.peakReservedBytes),
            formatCount(d.deviceCallCount),
            d.ooms,
            ...(request.verifyData ? [formatCount(d.verifiedAllocations ?? 0), d.verifyFailures ?? 0] : []),
            d.leaks.handles + d.leaks.reservations + d.leaks.mappings + d.leaks.mallocs,
          ]),
        ),
        ...document.devices.flatMap((d) => (d.startState ? [startStateLine(d.device, d.startState)] : [])),
        ...document.devices.flatMap((d, i) => (d.hostTier ? hostTierLines(d.device, d.hostTier, sims[i]) : [])),
        ...sims.map((s, i) => `device ${document.devices[i].device}: the live calls ${s.divergence === null ? "are the simulator's, call for call" : `differ from the simulator's at call ${s.divergence.index}: ${s.divergence.expected} simulated, ${s.divergence.actual} live`}`),
        `replayed ${formatCount(document.events)} events live in ${document.seconds.toFixed(3)} s`,
      ].join("\n"),
    );
  }
  if (corrupted) warn(`${request.file}: an allocation's check pattern changed before its free (two live allocations share memory)`);
  if (leaked) warn(`${request.file}: the ${request.backend} driver still held memory after teardown`);
  if (changedInTransit) warn(`${request.file}: bytes changed on their way to the host and back`);
  if (diverged) warn(`${request.file}: the live device calls are not the simulator's`);
  return corrupted || leaked || changedInTransit || diverged ? 1 : 0;
}

const gib = (bytes: number, seconds: number) => (seconds > 0 ? `${(bytes / 1024 ** 3 / seconds).toFixed(2)} GiB/s` : "n/a");
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;

/** The host tier's figures, measured, beside the simulator's. */
function hostTierLines(device: number, h: NonNullable<LiveReplayDocument["devices"][number]["hostTier"]>, sim: SimulatedHostTier | undefined): string[] {
  const lines = [
    `host tier, device ${device}: arena ${formatBytes(h.arenaBytes)} (${h.arenaLeftAfterTeardown === 0 ? "released at teardown" : `${formatBytes(h.arenaLeftAfterTeardown)} still held after teardown`}); ` +
      `copied out ${formatBytes(h.copyOut.bytes)} in ${formatCount(h.copyOut.calls)} copies, ${ms(h.copyOut.seconds)} (${gib(h.copyOut.bytes, h.copyOut.seconds)}; driver ${ms(h.copyOut.driverSeconds)}, ${gib(h.copyOut.bytes, h.copyOut.driverSeconds)}); ` +
      `copied in ${formatBytes(h.copyIn.bytes)} in ${formatCount(h.copyIn.calls)} copies, ${ms(h.copyIn.seconds)} (${gib(h.copyIn.bytes, h.copyIn.seconds)}; driver ${ms(h.copyIn.driverSeconds)}, ${gib(h.copyIn.bytes, h.copyIn.driverSeconds)})`,
  ];
  if (sim && (sim.bytesOut > 0 || sim.arenaBytes > 0)) {
    lines.push(`  simulated: arena ${formatBytes(sim.arenaPeakBytes)}, out ${formatBytes(sim.bytesOut)} in ${ms(sim.copyOutSeconds)}, in ${formatBytes(sim.bytesIn)} in ${ms(sim.copyInSeconds)} (H100 cost model)`);
  }
  if (h.roundTrip) {
    const r = h.roundTrip;
    lines.push(
      `  round trips: ${formatCount(r.roundTrips)} copies back compared byte for byte (${formatBytes(r.bytesCompared)}), ${r.failures === 0 ? "every byte the same" : `${r.failures} changed: ${r.firstFailure}`}; ${formatCount(r.checksWithPagesOnHost)} blocks freed with pages on the host, checked there`,
    );
  }
  for (const s of h.policyShrinks ?? []) {
    lines.push(
      `  the policy's shrink at event ${formatCount(s.eventIndex)}: ${formatBytes(s.bytesOut)} (${formatCount(s.pagesOut)} pages) to the host in ${ms(s.shrinkSeconds)} (${s.shrinkGiBps.toFixed(2)} GiB/s); ` +
        `${formatBytes(s.bytesBack)} brought back on their uses in ${ms(s.refillSeconds)} of fetches (${s.refillGiBps.toFixed(2)} GiB/s)`,
    );
  }
  for (const s of h.liveShrinks ?? []) {
    lines.push(
      `  live shrink before event ${formatCount(s.eventIndex)}: ${formatBytes(s.physicalBytesBefore)} on the device -> ${formatBytes(s.physicalBytesAfterShrink)}; ` +
        `moved ${formatBytes(s.bytesMoved)} (${formatCount(s.chunksMoved)} chunks), released ${formatBytes(s.bytesReleasedEmpty)} without a copy; ` +
        `shrink ${ms(s.shrinkSeconds)} (${s.shrinkGiBps.toFixed(2)} GiB/s), refill ${ms(s.refillSeconds)} (${s.refillGiBps.toFixed(2)} GiB/s); pinning the arena ${ms(s.pinSeconds)}` +
        (s.verifiedBytes > 0 ? `; ${formatBytes(s.verifiedBytes)} compared after the refill, ${s.changedBytes} bytes changed` : ""),
    );
  }
  return lines;
}

/** What a device recorded mid-run started from, and that the figures above count it. */
function startStateLine(device: number, s: StartStateReport): string {
  const held = s.atStart;
  return (
    `device ${device} starts mid-run: its start state (${formatCount(s.recorded.liveBlocks)} live blocks, ${formatBytes(s.recorded.liveBytes)}; ` +
    `${formatCount(s.recorded.segments)} segments, ${formatBytes(s.recorded.reservedBytes)} reserved) was allocated through the policy in ` +
    `${formatCount(s.materializingEvents)} events before the first, leaving ${formatBytes(held.reservedBytes)} reserved in ${formatCount(held.segments)} segments ` +
    `(${formatCount(s.segmentsRebuilt)} as recorded); the figures above include those allocations`
  );
}
