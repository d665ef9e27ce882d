// A live dedup run: the share registry and one process per fingerprinted tenant, each with its
// own driver (host memory or a GPU). All tenants share at once (the registry settles who publishes
// each key); then, where the plan gives each its timeline, each replays it in turn through its
// policy (the rest of their memory, every allocation's pattern checked with verifyData); then
// every process verifies every shared window (and its pattern chunks, without a timeline), and
// hashes the shared chunks' bytes as it reads them, so equal content across processes is checked,
// not assumed.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DriverKind } from "@lakebed/native-cuda";
import { LineChild } from "./child-lines.js";
import { RegistryClient } from "./registry-client.js";
import type { LiveDedupPlan } from "./dedup-plan.js";
import type { TenantReplayed, TenantShared, TenantVerified } from "./dedup-tenant.js";
import type { RegistryStats } from "./share-registry.js";
import { CHUNK_BYTES } from "../shared-pool.js";

export interface LiveDedupOptions {
  backend: DriverKind;
  device?: number;
  /** every process checks its pattern and every shared window, and hashes the shared chunks */
  verifyData?: boolean;
  /** the last tenant also tries to write a shared window through the driver (refused) and, on a
   * GPU, through the driver's own memset past the checks (refused by CUDA) */
  probeWrite?: boolean;
  /** a line at each step (shared, each replay), for a run on another machine to say how far it got */
  onProgress?: (line: string) => void;
}

export interface PerChunkCost {
  chunks: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
}

export interface LiveDedupResult {
  backend: DriverKind;
  tenants: (Omit<TenantShared, "exportDriverNs" | "exportWallNs" | "importDriverNs" | "importWallNs"> & { aloneBytes: number; privateBytes: number })[];
  /** each tenant's live replay of its timeline (null: the plan has none, private pattern chunks instead) */
  replays: TenantReplayed[] | null;
  /** every replay reserved at its peak what the simulator reserves for the same timeline, and no allocation failed */
  replaysAsSimulated: boolean;
  /** with verifyData, every process: its pattern and every shared window intact (mismatched bytes 0); null without */
  verified: TenantVerified[] | null;
  /** every shared window, every pattern chunk and (replays) every allocation's pattern intact */
  dataVerified: boolean;
  /** each shared chunk's bytes hash the same in every process that maps it */
  sharedContentEqual: boolean;
  /** the tenants' memory each alone, added up */
  aloneSumBytes: number;
  /** by the books: each tenant's own memory (its replay's peak reserved bytes, or its private
   * chunks) and each shared chunk once */
  dedupBytes: number;
  ratio: number;
  /** cuda: the device's free memory before the tenants shared less after they shared and (with
   * timelines) replayed, their caches still held (cuMemGetInfo), each process's context already
   * made; null on host memory, where free RAM moves with the machine */
  measuredDeviceBytes: number | null;
  measuredRatio: number | null;
  registry: { whileRunning: RegistryStats; afterExit: RegistryStats };
  /** cuMemExportToShareableHandle alone, and export + send as the publisher saw it */
  exportDriver: PerChunkCost;
  exportWall: PerChunkCost;
  /** import + map + read-only access: the driver functions alone, and with the close as the importer saw it */
  importDriver: PerChunkCost;
  importWall: PerChunkCost;
  /** with probeWrite: the driver's checks' refusals, the raw write's answer, the first tenant's
   * shared windows checked again afterwards (mismatched bytes; null with one tenant), and the
   * prober's teardown errors */
  probe: { refusedByChecks: string[]; raw: string; afterMismatchedBytes: number | null; teardownErrors?: string[] } | null;
  wallMs: number;
}

export function perChunk(ns: number[]): PerChunkCost {
  if (ns.length === 0) return { chunks: 0, p50Us: 0, p99Us: 0, meanUs: 0 };
  const s = [...ns].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] / 1000;
  return { chunks: s.length, p50Us: at(0.5), p99Us: at(0.99), meanUs: s.reduce((a, b) => a + b, 0) / s.length / 1000 };
}

export async function runLiveDedup(plan: LiveDedupPlan, options: LiveDedupOptions): Promise<LiveDedupResult> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "lakebed-colocate-"));
  const planFile = join(dir, "plan.json");
  writeFileSync(planFile, JSON.stringify(plan));
  const path = `@lakebed-colocate-${process.pid}-${Date.now()}`;
  const registry = new LineChild("the share registry", ["registry", "--path", path]);
  const tenants: LineChild[] = [];
  try {
    await registry.next(); // ready
    const device = String(options.device ?? 0);
    for (const [i, t] of plan.tenants.entries())
      tenants.push(new LineChild(`tenant ${t.name}`, ["dedup-tenant", "--plan", planFile, "--index", String(i), "--backend", options.backend, "--registry", path, "--device", device]));
    for (const t of tenants) await t.next(); // opened: every context exists before the baseline
    const before = options.backend === "cuda" ? (await tenants[0].ask<{ free: number }>("meminfo")).free : 0;
    for (const t of tenants) t.send("share");
    const shared: TenantShared[] = [];
    for (const t of tenants) shared.push(await t.next<TenantShared>());
    options.onProgress?.(`shared: ${shared.map((x) => `${x.published} published, ${x.imported} imported`).join("; ")} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    const replaying = plan.tenants.every((t) => t.replay !== undefined);
    if (!replaying && plan.tenants.some((t) => t.replay !== undefined)) throw new Error("a plan replays every tenant's timeline or none");
    let replays: TenantReplayed[] | null = null;
    if (replaying) {
      // one tenant at a time, the others holding their memory: on a GPU the processes' contexts
      // take turns on the device, so each of a replay's small synchronous copies (its pattern fills
      // and checks) would wait for the others' turns; the memory is measured once all have replayed
      replays = [];
      for (const t of tenants) {
        const r = await t.ask<TenantReplayed>(options.verifyData ? "replay-verify" : "replay");
        replays.push(r);
        options.onProgress?.(`replayed ${r.name}: ${r.segmentsRun} requests or steps, ${r.events} events in ${r.seconds.toFixed(1)} s, peak ${r.peakReservedBytes} (simulator ${r.simulatedPeakBytes}), ${r.verifyFailures} of ${r.verifiedAllocations} checked allocations changed`);
      }
    }
    const after = options.backend === "cuda" ? (await tenants[0].ask<{ free: number }>("meminfo")).free : 0;
    let verified: TenantVerified[] | null = null;
    if (options.verifyData) {
      verified = [];
      for (const t of tenants) t.send("verify");
      for (const t of tenants) verified.push(await t.next<TenantVerified>());
    }
    // after the verification, so that a write that got through could not hide: the last tenant
    // writes into a shared window (refused), and the first checks its windows again
    let probe: LiveDedupResult["probe"] = null;
    if (options.probeWrite) {
      const prober = tenants[tenants.length - 1];
      probe = { ...(await prober.ask<{ refusedByChecks: string[]; raw: string }>(options.backend === "cuda" ? "probe-raw" : "probe")), afterMismatchedBytes: null };
      if (tenants.length > 1) probe.afterMismatchedBytes = (await tenants[0].ask<TenantVerified>("verify")).sharedMismatchedBytes;
    }
    const client = RegistryClient.connect(path);
    const whileRunning = client.stats();
    for (const [i, t] of tenants.entries()) {
      const exit = await t.ask<{ leaks: boolean; errors: string[] }>("exit");
      // a prober's context may be lost after its refused write (CUDA): its teardown errors are said, not fatal
      if (probe !== null && i === tenants.length - 1) probe.teardownErrors = exit.errors;
      else if (exit.leaks || exit.errors.length > 0) throw new Error(`${t.label}: teardown left memory or failed: ${exit.errors.join("; ")}`);
      await t.exited;
    }
    const afterExit = client.shutdown();
    await registry.exited;

    const contentOf = new Map<string, Set<string>>();
    for (const v of verified ?? []) for (const [k, h] of Object.entries(v.sharedContent)) contentOf.set(k, (contentOf.get(k) ?? new Set()).add(h));
    const uniqueKeys = new Set(plan.tenants.flatMap((t) => t.keys)).size;
    const ownBytes = replays === null ? shared.reduce((a, s) => a + s.privateChunks * CHUNK_BYTES, 0) : replays.reduce((a, r) => a + r.peakReservedBytes, 0);
    const dedupBytes = ownBytes + uniqueKeys * CHUNK_BYTES;
    const replaysIntact = replays === null || replays.every((r) => r.verifyFailures === 0);
    const aloneSumBytes = plan.tenants.reduce((a, t) => a + t.aloneBytes, 0);
    const measuredDeviceBytes = options.backend === "cuda" ? before - after : null;
    return {
      backend: options.backend,
      tenants: shared.map(({ exportDriverNs, exportWallNs, importDriverNs, importWallNs, ...rest }, i) => ({ ...rest, aloneBytes: plan.tenants[i].aloneBytes, privateBytes: plan.tenants[i].privateBytes })),
      replays,
      replaysAsSimulated: replays === null || replays.every((r) => r.peakReservedBytes === r.simulatedPeakBytes && r.failedAllocs === 0),
      verified,
      dataVerified: verified !== null && replaysIntact && verified.every((v) => v.sharedMismatchedBytes === 0 && v.privateMismatchedBytes === 0),
      sharedContentEqual: verified !== null && [...contentOf.values()].every((s) => s.size === 1) && contentOf.size === uniqueKeys,
      aloneSumBytes,
      dedupBytes,
      ratio: dedupBytes / aloneSumBytes,
      measuredDeviceBytes,
      measuredRatio: measuredDeviceBytes === null ? null : measuredDeviceBytes / aloneSumBytes,
      registry: { whileRunning, afterExit },
      exportDriver: perChunk(shared.flatMap((s) => s.exportDriverNs)),
      exportWall: perChunk(shared.flatMap((s) => s.exportWallNs)),
      importDriver: perChunk(shared.flatMap((s) => s.importDriverNs)),
      importWall: perChunk(shared.flatMap((s) => s.importWallNs)),
      probe,
      wallMs: Date.now() - started,
    };
  } finally {
    for (const t of tenants) t.kill();
    registry.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
