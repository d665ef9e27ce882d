// One tenant of a live dedup run, in its own process with its own driver: its read-only parameter
// chunks through the share registry (imported read-only when another tenant published them,
// else created shareable, filled, published, then turned read-only: GMS' commit), and the rest of
// its memory its own chunks, filled with its own pattern. The content of a shared chunk stands in
// for the weights whose digest is its key: the check pattern seeded by the key, so every process
// can verify it without the model.
//
// The rest of its memory is either its scenario timeline replayed through its policy on the same
// driver (`replay` in its plan: tenant-timeline.ts, the shared windows cut out of its prologue;
// every allocation filled with the check pattern and checked before its free or at the end), or,
// without one, its alone-peak as private chunks filled with its own pattern (the lifetime tests).
//
// The driver's tables are the books here: each shared window is one mapping of a handle this
// process made or imported, read-only; each private chunk is one read-write mapping; the policy's
// segments are its own mappings (or mallocs).
import { createHash } from "node:crypto";
import { bindDriver, openDriver, shareSockets, type Driver, type DriverKind, CALL_KINDS } from "@lakebed/native-cuda";
import { defaultAllocConf, DeviceReplay } from "@lakebed/core-sim";
import type { PolicyName } from "../../replay.js";
import { CallRecorder } from "../../live/call-recorder.js";
import { readScenario } from "../scenario.js";
import { RegistryClient } from "./registry-client.js";
import { tenantTimelines } from "./dedup-plan.js";
import { CHUNK_BYTES } from "../shared-pool.js";

export interface DedupTenantPlan {
  name: string;
  /** the digest of each whole parameter window, in the tenant's order (a digest may repeat) */
  keys: string[];
  /** the rest of its memory: what it needs alone less its parameter windows */
  privateBytes: number;
  /** what it needs alone (its timeline's or trace's peak reserved bytes through its policy) */
  aloneBytes: number;
  /** its scenario timeline, replayed live through its policy instead of private pattern chunks */
  replay?: TenantReplayPlan;
}

export interface TenantReplayPlan {
  /** the scenario file (absolute) and the tenant's index in it */
  scenario: string;
  tenant: number;
  policy: PolicyName;
  /** the timeline with its shared windows cut out: its events, requests or steps, and its peak
   * reserved bytes on the simulator (what the live replay must reserve too) */
  events: number;
  segmentsRun: number;
  simulatedPeakBytes: number;
}

/** What a tenant's live replay of its timeline did. */
export interface TenantReplayed {
  name: string;
  events: number;
  segmentsRun: number;
  /** the policy's peak reserved bytes live, and the simulator's for the same timeline */
  peakReservedBytes: number;
  simulatedPeakBytes: number;
  /** what the policy still reserved at the end (its cache, held until the process exits) */
  reservedAtEndBytes: number;
  failedAllocs: number;
  /** device calls the policy made (memCreate, map, ...), all really made */
  deviceCalls: number;
  /** with verification: allocations whose pattern was checked, and those that had changed */
  verifiedAllocations: number;
  verifyFailures: number;
  /** the driver's physical bytes now: the policy's segments plus every shared handle held */
  physicalBytes: number;
  seconds: number;
}

/** What a tenant reports once its memory is set up. */
export interface TenantShared {
  name: string;
  pid: number;
  windows: number;
  uniqueKeys: number;
  imported: number;
  published: number;
  /** acquire rounds that found keys another tenant was still publishing */
  waitRounds: number;
  privateChunks: number;
  /** the driver's physical bytes: private chunks plus every shared handle it holds */
  physicalBytes: number;
  /** per published chunk: cuMemExportToShareableHandle alone (ns) and export + send as seen here (ns) */
  exportDriverNs: number[];
  exportWallNs: number[];
  /** per imported chunk: import + map + read-only access, the driver functions alone (ns), and as seen here with the close (ns) */
  importDriverNs: number[];
  importWallNs: number[];
  /** how a published chunk turned read-only here: its access changed in place, or (where the
   * driver refused that) unmapped and mapped again read-only; "" when it published nothing */
  commitBy: "" | "setAccess" | "remap";
}

export interface TenantVerified {
  name: string;
  /** bytes of the shared windows and of the private memory whose pattern had changed */
  sharedMismatchedBytes: number;
  privateMismatchedBytes: number;
  /** sha256 (first 16 hex) of each distinct shared chunk's bytes as this process reads them */
  sharedContent: Record<string, string>;
}

/** The pattern seed of a key: its first 48 bits. */
export function keySeed(key: string): number {
  return parseInt(key.slice(0, 12), 16);
}

const ACQUIRE_BATCH = 128;

export class DedupTenant {
  readonly driver: Driver;
  private sharedVa = 0;
  private privateVa = 0;
  private privateChunks = 0;
  /** the mapping of each window: key and address */
  private readonly windows: { key: string; va: number }[] = [];
  private client: RegistryClient | null = null;

  constructor(
    readonly plan: DedupTenantPlan,
    backend: DriverKind,
    private readonly seed: number,
    device = 0,
  ) {
    this.driver = openDriver(backend, { device });
    if (this.driver.granularity() !== CHUNK_BYTES) throw new Error(`the ${backend} driver's granularity is ${this.driver.granularity()} bytes; the pool's chunks are ${CHUNK_BYTES}`);
  }

  /** Parameter windows through the registry, then the private memory; both filled. */
  share(registryPath: string): TenantShared {
    const d = this.driver;
    const G = CHUNK_BYTES;
    const s = shareSockets();
    this.client = RegistryClient.connect(registryPath);
    const keys = this.plan.keys;
    if (keys.length > 0) this.sharedVa = d.addressReserve(keys.length * G);
    const slotsOf = new Map<string, number[]>();
    keys.forEach((k, i) => slotsOf.set(k, [...(slotsOf.get(k) ?? []), i]));
    const out: TenantShared = {
      name: this.plan.name, pid: process.pid, windows: keys.length, uniqueKeys: slotsOf.size, imported: 0, published: 0, waitRounds: 0, privateChunks: 0, physicalBytes: 0,
      exportDriverNs: [], exportWallNs: [], importDriverNs: [], importWallNs: [], commitBy: "",
    };
    d.timeCalls(true);
    let remaining = [...slotsOf.keys()];
    while (remaining.length > 0) {
      const waiting: string[] = [];
      for (let b = 0; b < remaining.length; b += ACQUIRE_BATCH) {
        const batch = remaining.slice(b, b + ACQUIRE_BATCH);
        const got = this.client.acquire(batch, G);
        for (const [key, fd] of got.have) {
          d.takeCallTimes(); // forget earlier calls: what follows is this chunk's
          const t0 = process.hrtime.bigint();
          const imp = d.importHandle(fd, G);
          s.close(fd); // right after the import: the handle keeps the memory, not the descriptor
          for (const slot of slotsOf.get(key)!) this.mapReadOnly(slot, key, imp.handle);
          out.importWallNs.push(Number(process.hrtime.bigint() - t0));
          out.importDriverNs.push(imp.driverNs + this.driverNsSince());
          out.imported++;
        }
        const made: { key: string; handle: number }[] = [];
        for (const key of got.publish) {
          const handle = d.memCreateShareable(G);
          if (handle < 0) throw new Error(`out of memory creating a shared chunk (${out.published} published)`);
          const [first] = slotsOf.get(key)!;
          const va = this.sharedVa + first * G;
          d.map(va, G, handle);
          d.setAccess(va, G);
          d.fillPattern(va, G, keySeed(key)); // the weights' load
          made.push({ key, handle });
        }
        // commit before publishing (GMS): the writer's own mapping turns read-only, so nothing it
        // still has queued can change content another process maps; its other windows map it too
        for (const { key, handle } of made) {
          const [first, ...rest] = slotsOf.get(key)!;
          out.commitBy = this.commit(this.sharedVa + first * G, handle);
          this.windows.push({ key, va: this.sharedVa + first * G });
          for (const slot of rest) this.mapReadOnly(slot, key, handle);
          out.published++;
        }
        // export and send in batches of at most 128 descriptors, closing each right after sending
        for (let p = 0; p < made.length; p += ACQUIRE_BATCH) {
          const part = made.slice(p, p + ACQUIRE_BATCH);
          const t0 = process.hrtime.bigint();
          const fds = part.map(({ handle }) => {
            const e = d.exportHandle(handle);
            out.exportDriverNs.push(e.driverNs);
            return e.fd;
          });
          this.client.publish(part.map((m) => m.key), fds, G);
          for (const fd of fds) s.close(fd);
          const each = Number(process.hrtime.bigint() - t0) / part.length;
          for (let i = 0; i < part.length; i++) out.exportWallNs.push(each);
        }
        waiting.push(...got.pending);
      }
      if (waiting.length > 0) {
        out.waitRounds++;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2); // another tenant is filling them
      }
      remaining = waiting;
    }
    d.timeCalls(false);
    this.privateChunks = this.plan.replay ? 0 : Math.ceil(this.plan.privateBytes / G);
    if (this.privateChunks > 0) {
      const bytes = this.privateChunks * G;
      this.privateVa = d.addressReserve(bytes);
      for (let i = 0; i < this.privateChunks; i++) {
        const h = d.memCreate(G);
        if (h < 0) throw new Error(`out of memory at private chunk ${i} of ${this.privateChunks}`);
        d.map(this.privateVa + i * G, G, h);
      }
      d.setAccess(this.privateVa, bytes);
      d.fillPattern(this.privateVa, bytes, this.seed);
    }
    out.privateChunks = this.privateChunks;
    out.physicalBytes = d.counters().physicalBytes;
    return out;
  }

  /**
   * Replays the tenant's timeline through its policy on this driver (after share: the windows are
   * mapped), with every allocation's pattern filled and checked when `verifyData`. The policy's
   * memory stays until close, as a serving process keeps its cache.
   */
  async replay(verifyData: boolean): Promise<TenantReplayed> {
    const r = this.plan.replay;
    if (!r) throw new Error(`tenant ${this.plan.name}: its plan has no timeline to replay`);
    const started = performance.now();
    const { keys, dedup } = await tenantTimelines(readScenario(r.scenario), r.tenant);
    if (keys.length !== this.plan.keys.length || keys.some((k, i) => k !== this.plan.keys[i])) throw new Error(`tenant ${this.plan.name}: its trace's parameter windows are not the plan's (the fingerprints or the trace changed)`);
    const recorder = new CallRecorder(false);
    const bound = bindDriver(this.driver, recorder);
    const session = new DeviceReplay(dedup.trace, { policy: r.policy, conf: defaultAllocConf(), traceAddresses: false, verifyData, deviceImports: bound.imports });
    bound.setMemory(session.wasm.memory);
    while (!session.done) session.step();
    const result = session.result();
    const broken = this.driver.isValid();
    if (broken !== null) throw new Error(`tenant ${this.plan.name}: the driver's tables are inconsistent after the replay: ${broken}`);
    return {
      name: this.plan.name,
      events: dedup.trace.events.length,
      segmentsRun: dedup.segmentsRun,
      peakReservedBytes: result.peakReservedBytes,
      simulatedPeakBytes: r.simulatedPeakBytes,
      reservedAtEndBytes: result.stats["reserved_bytes.all.current"] ?? Number.NaN,
      failedAllocs: result.failedAllocs,
      deviceCalls: recorder.count,
      verifiedAllocations: result.verifiedAllocations ?? 0,
      verifyFailures: result.verifyFailures ?? 0,
      physicalBytes: this.driver.counters().physicalBytes,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** Every window and the private memory checked; the shared chunks' bytes hashed. */
  verify(): TenantVerified {
    const d = this.driver;
    const G = CHUNK_BYTES;
    let shared = 0;
    const content: Record<string, string> = {};
    const buf = new Uint8Array(G);
    for (const w of this.windows) {
      shared += d.checkPattern(w.va, G, keySeed(w.key));
      if (!(w.key in content)) {
        d.copyToHost(w.va, buf, G);
        content[w.key] = createHash("sha256").update(buf).digest("hex").slice(0, 16);
      }
    }
    const priv = this.privateChunks > 0 ? d.checkPattern(this.privateVa, this.privateChunks * G, this.seed) : 0;
    return { name: this.plan.name, sharedMismatchedBytes: shared, privateMismatchedBytes: priv, sharedContent: content };
  }

  /**
   * Writes into the first shared window: through the driver's own calls (memset, fillPattern),
   * which are refused, then, with `raw`, the write the checks refuse made anyway
   * (writeThroughReadOnly): on host memory a CPU store, which kills this process (SIGSEGV); on a
   * GPU cuMemsetD8, which the driver refuses.
   */
  probeWrite(raw: boolean): { refusedByChecks: string[]; raw: string } {
    const w = this.windows[0];
    if (!w) throw new Error("no shared window to write");
    const refused: string[] = [];
    for (const attempt of [() => this.driver.memset(w.va, 0, CHUNK_BYTES), () => this.driver.fillPattern(w.va, 4096, 1)]) {
      try {
        attempt();
        refused.push("not refused");
      } catch (e) {
        refused.push((e as Error).message);
      }
    }
    let rawAnswer = "not tried";
    if (raw) {
      try {
        this.driver.writeThroughReadOnly(w.va, CHUNK_BYTES);
        rawAnswer = "not refused";
      } catch (e) {
        rawAnswer = (e as Error).message;
      }
    }
    return { refusedByChecks: refused, raw: rawAnswer };
  }

  memInfo(): { free: number; total: number } {
    return this.driver.memGetInfo();
  }

  /** Tears the driver down (every handle, mapping and reservation) and leaves the registry. */
  close(): { leaks: boolean; errors: string[] } {
    const r = this.driver.teardown();
    this.client?.close();
    this.client = null;
    return { leaks: !this.driver.leakReport().clean, errors: r.errors };
  }

  /** The writer's mapping turns read-only: in place, else by mapping it again (GMS unmaps its writer). */
  private commit(va: number, handle: number): "setAccess" | "remap" {
    try {
      this.driver.setAccessReadOnly(va, CHUNK_BYTES);
      return "setAccess";
    } catch {
      this.driver.unmap(va, CHUNK_BYTES);
      this.driver.map(va, CHUNK_BYTES, handle);
      this.driver.setAccessReadOnly(va, CHUNK_BYTES);
      return "remap";
    }
  }

  private mapReadOnly(slot: number, key: string, handle: number): void {
    const va = this.sharedVa + slot * CHUNK_BYTES;
    this.driver.map(va, CHUNK_BYTES, handle);
    this.driver.setAccessReadOnly(va, CHUNK_BYTES);
    this.windows.push({ key, va });
  }

  /** map + setAccess driver time of the calls timed since the last take (ns). */
  private driverNsSince(): number {
    const t = this.driver.takeCallTimes();
    let ns = 0;
    for (let i = 0; i < t.kinds.length; i++) {
      const kind = CALL_KINDS[t.kinds[i]];
      if ((kind === "map" || kind === "setAccess") && t.driverNs[i] > 0) ns += t.driverNs[i];
    }
    return ns;
  }
}
