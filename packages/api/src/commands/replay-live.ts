// `lakebed replay TRACE --backend host|cuda [--verify-data]`: the live replay's output. The JSON
// document is replay's, plus the backend, the driver, and per device the calls really made, the
// allocations verified, and what teardown left (`leaks`). Exit status 1 when a pattern changed
// (aliasing between live allocations) or anything was left after teardown.
import type { Trace } from "@lakebed/traces";
import { LiveReplayError, replayLive, type LiveBackend, type LiveReplayDocument } from "../live/live-replay.js";
import { parseFailEvery } from "../live/backend-options.js";
import type { PolicyName } from "../replay.js";
import type { InvariantChecks } from "./replay.js";
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
}

export async function replayLiveCommand(trace: Trace, request: LiveCliRequest, progress: Progress): Promise<number> {
  let document: LiveReplayDocument;
  try {
    ({ document } = await replayLive(trace, {
      backend: request.backend,
      policy: request.policy,
      conf: request.conf,
      capacityBytes: request.capacityBytes,
      verifyData: request.verifyData,
      ...request.checks,
      failEvery: request.failEvery === undefined ? undefined : parseFailEvery(request.failEvery),
      onProgress: (done, total) => progress.update(done, total),
    }));
  } catch (e) {
    // one line naming the file, as every other failure of the CLI
    if (e instanceof LiveReplayError) throw new Error(`${request.file}: ${e.message}`);
    throw e;
  } finally {
    progress.stop();
  }
  const leaked = document.devices.some((d) => d.leaks.handles + d.leaks.reservations + d.leaks.mappings + d.leaks.mallocs > 0);
  const corrupted = document.devices.some((d) => (d.verifyFailures ?? 0) > 0);
  if (request.json) {
    writeJson(document);
  } else {
    writeHuman(
      [
        `${printable(request.file)}: policy ${document.policy}${document.conf ? ` (${printable(document.conf)})` : ""}, live on ${document.driver}`,
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
        `replayed ${formatCount(document.events)} events live in ${document.seconds.toFixed(3)} s`,
      ].join("\n"),
    );
  }
  if (corrupted) warn(`${request.file}: an allocation's check pattern changed before its free (two live allocations share memory)`);
  if (leaked) warn(`${request.file}: the ${request.backend} driver still held memory after teardown`);
  return corrupted || leaked ? 1 : 0;
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
