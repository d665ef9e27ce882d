// `lakebed colocate SCENARIO --backend host|cuda`: the live half. The scenario's fingerprinted
// tenants run as processes on the driver, sharing their identical read-only chunks through the
// share registry and each replaying its timeline (its requests or steps) through its policy
// (live-dedup.ts), then a training and an inference process hand memory over on
// one pool (handover-live.ts). The strategies' simulated comparison is `--backend sim` (default).
import { doctor, type DriverKind } from "@lakebed/native-cuda";
import { readScenario } from "../scenario.js";
import { planLiveDedup } from "./dedup-plan.js";
import { runLiveDedup, type LiveDedupResult } from "./live-dedup.js";
import { runLiveHandover, type HandoverMeasured } from "./handover-live.js";
import { CHUNK_BYTES } from "../shared-pool.js";
import { parseBytes, formatBytes } from "../../units.js";
import { UsageError } from "../../usage-error.js";
import { writeHuman, writeJson } from "../../output.js";
import { printable } from "../../terminal-text.js";

export interface LiveColocateOptions {
  json?: boolean;
  verifyData?: boolean;
  device?: string;
  /** what inference acquires in the handover (default 32 MiB on host memory, 1 GiB on a GPU) */
  handoverAcquire?: string;
  handoverIterations?: string;
}

export interface LiveColocateDocument {
  scenario: string;
  backend: DriverKind;
  dedup: LiveDedupResult;
  handover: HandoverMeasured;
  /** what failed: data, shared content, zero-fill, a VMM call on the inference side ([] when all held) */
  failures: string[];
}

function positiveInt(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${what}: a positive integer, got ${text}`);
  return n;
}

export async function colocateLiveCommand(file: string, backend: DriverKind, options: LiveColocateOptions): Promise<number> {
  const device = options.device === undefined ? 0 : Number(options.device);
  if (!Number.isInteger(device) || device < 0) throw new UsageError(`--device: a device ordinal (0, 1, ...), got ${options.device}`);
  const acquireBytes = options.handoverAcquire === undefined ? (backend === "cuda" ? 2 ** 30 : 32 * 2 ** 20) : parseBytes(options.handoverAcquire, "--handover-acquire");
  if (acquireBytes < CHUNK_BYTES || acquireBytes % CHUNK_BYTES !== 0) throw new UsageError(`--handover-acquire: a multiple of 2 MiB, got ${formatBytes(acquireBytes)}`);
  const iterations = positiveInt(options.handoverIterations, backend === "cuda" ? 30 : 10, "--handover-iterations");
  const available = doctor().drivers[backend];
  if (!available.available) throw new UsageError(`--backend ${backend}: the ${backend} driver is not available here: ${available.reason}`);
  const scenario = readScenario(file);
  const plan = await planLiveDedup(scenario);
  const dedup = await runLiveDedup(plan, { backend, device, verifyData: options.verifyData ?? false });
  // the pool: half as much again as one acquisition, so training keeps chunks of its own
  const poolBytes = Math.ceil((acquireBytes * 1.5) / CHUNK_BYTES) * CHUNK_BYTES;
  const handover = await runLiveHandover({ backend, device, poolBytes, acquireBytes, iterations });
  const failures: string[] = [];
  if (dedup.verified !== null && !dedup.dataVerified) failures.push("a tenant's data (a replayed allocation or a pattern chunk) or a shared window changed");
  if (dedup.verified !== null && !dedup.sharedContentEqual) failures.push("a shared chunk's bytes differ between processes");
  if (!dedup.replaysAsSimulated) failures.push("a tenant's live replay reserved other than the simulator's replay of its timeline, or an allocation failed");
  if (dedup.registry.afterExit.fdsHeld !== 0) failures.push(`the registry still held ${dedup.registry.afterExit.fdsHeld} descriptors after every tenant left`);
  if (handover.notZeroBytes > 0) failures.push(`${handover.notZeroBytes} sampled bytes of handed-over chunks were not zero`);
  if (handover.vmmCalls > 0) failures.push(`the inference side made ${handover.vmmCalls} VMM calls while handing over`);
  if (handover.books !== null) failures.push(`the handover books: ${handover.books}`);
  const doc: LiveColocateDocument = { scenario: scenario.file, backend, dedup, handover, failures };
  if (options.json) writeJson(doc);
  else writeHuman(humanLines(file, doc).join("\n"));
  return failures.length === 0 ? 0 : 1;
}

function humanLines(file: string, doc: LiveColocateDocument): string[] {
  const d = doc.dedup;
  const h = doc.handover;
  const us = (x: number) => `${x.toFixed(1)} us`;
  const ms = (x: number) => `${(x / 1000).toFixed(3)} ms`;
  return [
    `${printable(file)}: live on ${doc.backend}, ${d.tenants.length} tenant processes and the share registry (${(d.wallMs / 1000).toFixed(1)} s)`,
    `dedup: ${formatBytes(d.aloneSumBytes)} alone, ${formatBytes(d.dedupBytes)} with shared chunks by the books (${d.ratio.toFixed(3)} x)` +
      (d.measuredDeviceBytes === null ? "" : `; device memory measured ${formatBytes(d.measuredDeviceBytes)} (${d.measuredRatio!.toFixed(3)} x)`),
    `  ${d.tenants.map((t) => `${printable(t.name)}: ${t.published} published, ${t.imported} imported, ${t.privateChunks} private chunks`).join("; ")}`,
    ...(d.replays ?? []).map(
      (r) =>
        `  ${printable(r.name)} replayed its timeline (${r.segmentsRun} requests or steps, ${r.events} events, ${r.deviceCalls} device calls, ${r.seconds.toFixed(1)} s): peak reserved ${formatBytes(r.peakReservedBytes)} (simulator ${formatBytes(r.simulatedPeakBytes)}), ${r.failedAllocs} failed allocations` +
        (d.verified === null ? "" : `, ${r.verifiedAllocations} allocations checked, ${r.verifyFailures} changed`),
    ),
    d.verified === null
      ? "  data not verified (--verify-data checks every process's pattern and every shared chunk)"
      : `  --verify-data: ${d.verified.length} processes, ${d.dataVerified ? "every pattern and shared window intact" : "MISMATCH"}; shared chunks ${d.sharedContentEqual ? "hash the same in every process" : "DIFFER between processes"}`,
    `  per shared chunk: export ${us(d.exportWall.p50Us)} p50 (driver ${us(d.exportDriver.p50Us)}; H100 floor 34 us), import + map + read-only access ${us(d.importWall.p50Us)} p50 (driver ${us(d.importDriver.p50Us)}; H100 floor 47-56 us)`,
    `  registry: ${d.registry.whileRunning.keys} keys held by ${d.registry.whileRunning.clients - 1} tenants; after they left: ${d.registry.afterExit.fdsHeld} descriptors held`,
    `handover: ${formatBytes(h.acquireBytes)} to inference from training's pool of ${formatBytes(h.pool.bytes)} (${h.pool.chunks} chunks sent once, ${Math.ceil(h.pool.chunks / 128)} messages), ${h.iterations} times after a warm-up (${ms(h.warmUpUs)}): p50 ${ms(h.handover.p50Us)}, p99 ${ms(h.handover.p99Us)} with zero-fill (${h.zeroFilledChunks} chunks zero-filled, ${h.notZeroBytes} sampled bytes not zero, ${h.vmmCalls} VMM calls on the inference side)`,
    `  free-then-malloc in the same processes: p50 ${ms(h.freeThenMalloc.p50Us)}, p99 ${ms(h.freeThenMalloc.p99Us)} (without waiting for training's step; Sirius: 0.8 ms with zero-fill, about 250 ms naive)`,
    ...doc.failures.map((f) => `FAILED: ${f}`),
  ];
}
