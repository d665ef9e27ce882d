import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openDriver, shareSockets, sendMessage, recvMessage, DeviceError, type Driver } from "@lakebed/native-cuda";
import { LineChild } from "../packages/api/src/colocate/live/child-lines.js";
import { RegistryClient, RegistryRefused } from "../packages/api/src/colocate/live/registry-client.js";
import type { TenantReplayed, TenantShared, TenantVerified } from "../packages/api/src/colocate/live/dedup-tenant.js";
import { planLiveDedup } from "../packages/api/src/colocate/live/dedup-plan.js";
import { readScenario } from "../packages/api/src/colocate/scenario.js";
import type { LiveColocateDocument } from "../packages/api/src/colocate/live/live-command.js";
import { cudaAvailable, hostAvailable } from "./support/live-drivers.js";
import { lakebed, tempFile } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * The live half of colocation on the host driver (memfd + mmap; the GPU runs the same code through
 * scripts/colocate-live/gpu-check.sh): chunks exported and imported by file descriptor, read-only
 * mappings refusing writes (by the driver's checks, and by the memory system itself: a CPU store
 * through the mapping kills the process with SIGSEGV), the share registry's uid check and
 * references that follow socket lifetime, a publisher killed with SIGKILL leaving the others'
 * memory intact, and `lakebed colocate --backend host` end to end.
 */
const MiB = 2 ** 20;
const G = 2 * MiB;

function key(i: number): string {
  return createHash("blake2b512").update(`chunk ${i}`).digest("hex");
}

const open: Driver[] = [];
const children: LineChild[] = [];
afterEach(() => {
  for (const d of open.splice(0)) d.teardown();
  for (const c of children.splice(0)) c.kill();
});

function hostDriver(): Driver {
  const d = openDriver("host");
  open.push(d);
  return d;
}

function child(label: string, args: string[]): LineChild {
  const c = new LineChild(label, args);
  children.push(c);
  return c;
}

let lastRegistry: LineChild | null = null;

async function startRegistry(extra: string[] = []): Promise<string> {
  const path = `@lakebed-test-registry-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const r = child("registry", ["registry", "--path", path, ...extra]);
  await r.next();
  lastRegistry = r;
  return path;
}

/** A tenant process over `keys` (shared) and `privateBytes` of its own. */
function tenant(planFile: string, index: number, registry: string): LineChild {
  return child(`tenant ${index}`, ["dedup-tenant", "--plan", planFile, "--index", String(index), "--backend", "host", "--registry", registry]);
}

function planFile(tenants: { keys: string[]; privateBytes: number }[]): string {
  return tempFile("plan.json", JSON.stringify({ scenario: "test", chunkBytes: G, tenants: tenants.map((t, i) => ({ name: `t${i}`, aloneBytes: t.keys.length * G + t.privateBytes, ...t })) }));
}

describe.skipIf(!hostAvailable)("sharing chunks between processes (host driver)", () => {
  it("a chunk exported by fd and imported maps the same memory; read-only mappings refuse every write the driver is asked for", () => {
    const d = hostDriver();
    const s = shareSockets();
    const h = d.memCreateShareable(G);
    const va = d.addressReserve(2 * G);
    d.map(va, G, h);
    d.setAccess(va, G);
    d.fillPattern(va, G, 42);
    // over a real socket, as between processes
    const path = `@lakebed-test-${process.pid}`;
    const listenFd = s.listen(path);
    const a = s.connect(path);
    const b = s.accept(listenFd);
    expect(b.uid).toBe(process.getuid!());
    expect(b.pid).toBe(process.pid);
    const exported = d.exportHandle(h);
    sendMessage(a, { chunk: 1 }, [exported.fd]);
    s.close(exported.fd);
    const got = recvMessage(b.fd)!;
    expect(got.message).toEqual({ chunk: 1 });
    expect(got.fds).toHaveLength(1);
    const imported = d.importHandle(got.fds[0], G);
    s.close(got.fds[0]); // the handle keeps the memory, not the descriptor
    d.map(va + G, G, imported.handle);
    d.setAccessReadOnly(va + G, G);
    expect(d.checkPattern(va + G, G, 42)).toBe(0);
    // a write through the read-write mapping shows through the read-only one: one piece of memory
    d.fillPattern(va, G, 43);
    expect(d.checkPattern(va + G, G, 43)).toBe(0);
    const refusals: string[] = [];
    for (const write of [() => d.memset(va + G, 0, G), () => d.fillPattern(va + G, 4096, 1), () => d.copyFromHost(va + G, new Uint8Array(16), 16)]) {
      try {
        write();
      } catch (e) {
        expect(e).toBeInstanceOf(DeviceError);
        expect((e as DeviceError).code).toBe("INVALID");
        refusals.push((e as Error).message);
      }
    }
    expect(refusals).toHaveLength(3);
    expect(refusals[0]).toMatch(/mapped read-only \(a shared chunk\): writes are refused/);
    // the host tier's copyIn is a write too
    expect(d.hostReserve(G)).toBe(true);
    expect(() => d.copyIn(0, va + G, 4096)).toThrow(/read-only/);
    d.hostRelease();
    expect(d.checkPattern(va + G, G, 43)).toBe(0);
    // setAccess read-write again lifts it; a plain chunk cannot be exported (CUDA fixes the handle type at creation)
    expect(() => d.exportHandle(d.memCreate(G))).toThrow(/not made shareable/);
    expect(() => d.writeThroughReadOnly(va, G)).toThrow(/not all mapped read-only/);
    expect(() => s.send(a, Buffer.from("x"), new Array(254).fill(a))).toThrow(/at most 253/);
    expect(d.isValid()).toBeNull();
    s.close(a);
    expect(recvMessage(b.fd)).toBeNull(); // the peer's close is seen
    s.close(b.fd);
    s.close(listenFd);
  });

  it("a CPU store through a read-only shared mapping kills the process (SIGSEGV), and the chunk's content is untouched", async () => {
    const registry = await startRegistry();
    const plan = planFile([
      { keys: [key(1), key(2)], privateBytes: G },
      { keys: [key(2), key(1)], privateBytes: 0 },
    ]);
    const publisher = tenant(plan, 0, registry);
    await publisher.next();
    expect((await publisher.ask<TenantShared>("share")).published).toBe(2);
    const writer = tenant(plan, 1, registry);
    await writer.next();
    expect((await writer.ask<TenantShared>("share")).imported).toBe(2);
    // the driver's own calls are refused first; then the store made anyway faults
    const probed = await writer.ask<{ refusedByChecks: string[]; raw: string }>("probe");
    expect(probed.refusedByChecks).toHaveLength(2);
    expect(probed.refusedByChecks.every((m) => /read-only/.test(m))).toBe(true);
    expect(probed.raw).toBe("not tried");
    writer.send("probe-raw");
    const end = await writer.exited;
    expect(end.signal).toBe("SIGSEGV");
    const v = await publisher.ask<TenantVerified>("verify");
    expect(v.sharedMismatchedBytes).toBe(0);
    expect(v.privateMismatchedBytes).toBe(0);
  });

  it("a publisher killed with SIGKILL leaves the others' memory intact; references follow socket lifetime", async () => {
    const registry = await startRegistry();
    const keys = [key(10), key(11), key(12), key(13)];
    const plan = planFile([
      { keys, privateBytes: 2 * G },
      { keys: [...keys, key(14)], privateBytes: G },
      { keys, privateBytes: 0 },
    ]);
    const a = tenant(plan, 0, registry);
    const b = tenant(plan, 1, registry);
    await a.next();
    await b.next();
    expect((await a.ask<TenantShared>("share")).published).toBe(4);
    const bShared = await b.ask<TenantShared>("share");
    expect(bShared.imported).toBe(4);
    expect(bShared.published).toBe(1); // the key only it has
    const client = RegistryClient.connect(registry);
    let stats = client.stats(keys);
    expect(stats.keys).toBe(5);
    expect(stats.holders[keys[0]]).toBe(2);
    expect(stats.holderCounts).toEqual({ 1: 1, 2: 4 });
    a.kill("SIGKILL");
    expect((await a.exited).signal).toBe("SIGKILL");
    // B's imported handles keep the chunks: its data is intact
    const v = await b.ask<TenantVerified>("verify");
    expect(v.sharedMismatchedBytes).toBe(0);
    expect(v.privateMismatchedBytes).toBe(0);
    stats = client.stats(keys);
    expect(stats.holders[keys[0]]).toBe(1); // A's references went with its socket
    expect(stats.fdsHeld).toBe(5);
    // a late joiner imports what the dead publisher made: the registry still holds the descriptors
    const c = tenant(plan, 2, registry);
    await c.next();
    const cShared = await c.ask<TenantShared>("share");
    expect(cShared.imported).toBe(4);
    expect(cShared.published).toBe(0);
    const cv = await c.ask<TenantVerified>("verify");
    expect(cv.sharedMismatchedBytes).toBe(0);
    expect(cv.sharedContent).toEqual(Object.fromEntries(keys.map((k) => [k, v.sharedContent[k]])));
    for (const t of [b, c]) {
      expect(await t.ask<{ leaks: boolean }>("exit")).toMatchObject({ leaks: false, errors: [] });
      await t.exited;
    }
    const last = client.shutdown();
    expect(last.keys).toBe(0);
    expect(last.fdsHeld).toBe(0);
  });

  it("a publisher killed with SIGKILL while the other tenant replays its requests: the replay's data and the shared windows stay intact", async () => {
    // two-infer-live's plan: both tenants replay their timelines; tenant 0 publishes the 126 windows
    const plan = await planLiveDedup(readScenario(join(repoRoot, "test/fixtures/scenarios/two-infer-live.json")));
    const file = tempFile("replay-plan.json", JSON.stringify(plan));
    const registry = await startRegistry();
    const a = tenant(file, 0, registry);
    const b = tenant(file, 1, registry);
    await a.next();
    await b.next();
    expect((await a.ask<TenantShared>("share")).published).toBe(126);
    expect((await b.ask<TenantShared>("share")).imported).toBe(126);
    b.send("replay-verify"); // B replays while A dies
    a.kill("SIGKILL");
    expect((await a.exited).signal).toBe("SIGKILL");
    const replayed = await b.next<TenantReplayed>();
    expect([replayed.peakReservedBytes, replayed.failedAllocs, replayed.verifyFailures]).toEqual([plan.tenants[1].replay!.simulatedPeakBytes, 0, 0]);
    expect(replayed.verifiedAllocations).toBeGreaterThan(10_000);
    const v = await b.ask<TenantVerified>("verify");
    expect(v.sharedMismatchedBytes).toBe(0);
    expect(Object.keys(v.sharedContent)).toHaveLength(126);
    const client = RegistryClient.connect(registry);
    const stats = client.stats();
    expect(stats.holderCounts).toEqual({ 1: 126 }); // A's references went with its socket
    expect(stats.fdsHeld).toBe(126);
    expect(await b.ask<{ leaks: boolean }>("exit")).toMatchObject({ leaks: false, errors: [] });
    await b.exited;
    expect(client.shutdown()).toMatchObject({ keys: 0, fdsHeld: 0 });
  });

  it("the registry killed with SIGKILL takes nobody's memory: handles live in the tenants", async () => {
    const registry = await startRegistry();
    const keys = [key(30), key(31)];
    const plan = planFile([
      { keys, privateBytes: G },
      { keys, privateBytes: G },
    ]);
    const a = tenant(plan, 0, registry);
    const b = tenant(plan, 1, registry);
    await a.next();
    await b.next();
    expect((await a.ask<TenantShared>("share")).published).toBe(2);
    expect((await b.ask<TenantShared>("share")).imported).toBe(2);
    lastRegistry!.kill("SIGKILL");
    expect((await lastRegistry!.exited).signal).toBe("SIGKILL");
    for (const t of [a, b]) {
      const v = await t.ask<TenantVerified>("verify");
      expect(v.sharedMismatchedBytes + v.privateMismatchedBytes).toBe(0);
    }
    // no successor exports to late joiners (mpool's kMasterChance is not built): a new tenant is refused at connect
    expect(() => RegistryClient.connect(registry)).toThrow(/ECONNREFUSED|connect/);
  });

  it("a client that breaks the protocol is dropped, and the registry goes on serving the others", async () => {
    const registry = await startRegistry();
    const s = shareSockets();
    const good = RegistryClient.connect(registry);
    const bad = s.connect(registry);
    expect(recvMessage(bad)!.message).toMatchObject({ op: "welcome" });
    s.send(bad, Buffer.from("not json"), [bad]); // a descriptor rides on it too: closed, not kept
    expect(recvMessage(bad)).toBeNull(); // dropped
    sendMessage(good.fd, { op: "acquire", keys: "not a list", bytes: G });
    expect(recvMessage(good.fd)).toBeNull(); // a malformed request drops that client too
    const again = RegistryClient.connect(registry);
    expect(again.acquire([key(20)], G).publish).toEqual([key(20)]);
    expect(again.stats()).toMatchObject({ clients: 1, pending: 1 });
    s.close(bad);
    good.close();
    expect(again.shutdown()).toMatchObject({ keys: 0, fdsHeld: 0 });
  });

  it("the registry exports nothing to a peer of another uid (SO_PEERCRED)", async () => {
    const registry = await startRegistry(["--allow-uid", String(process.getuid!() + 1)]);
    expect(() => RegistryClient.connect(registry)).toThrow(RegistryRefused);
    expect(() => RegistryClient.connect(registry)).toThrow(/uid \d+ is not \d+/);
  });
});

describe.skipIf(!hostAvailable)("a handover whose training process (the pool's exporter) is killed (host driver)", () => {
  // training exports an 8-chunk pool to one inference process (handover-tenant: commands on its
  // stdin); a handover gives inference chunks training freed from the top of the pool, and
  // inference claims FREE chunks from the bottom
  const P = 8;
  type Memfds = { fds: number; chunkMappings: number; booksMappings: number };
  type Books = { free: number; train: number; infer: number; lockHolder: number; valid: string | null; trainingAlive: boolean; reaped: number | null; physicalBytes: number; memfds: Memfds };

  async function pool(extra: string[] = [], inferenceExtra: string[] = []): Promise<{ training: LineChild; inference: LineChild; trainingToken: number }> {
    const path = `@lakebed-test-handover-${process.pid}-${Math.random().toString(36).slice(2)}`;
    const training = child("training", ["handover-train", "--backend", "host", "--path", path, "--pool-bytes", String(P * G), "--acquire-bytes", String(G), "--iterations", "1", ...extra]);
    expect(await training.next()).toMatchObject({ phase: "ready", chunks: P });
    const inference = child("inference", ["handover-tenant", "--backend", "host", "--path", path, ...inferenceExtra]);
    const opened = await inference.next<{ chunks: number; trainingPid: number; trainingToken: number; token: number; memfds: Memfds }>();
    expect(opened).toMatchObject({ phase: "connected", chunks: P, trainingPid: training.pid });
    // the books know each process by the token it announced over the socket, not by its pid
    expect(Number.isInteger(opened.trainingToken) && opened.trainingToken !== 0 && opened.trainingToken !== opened.token).toBe(true);
    expect(opened.memfds.fds).toBe(P); // a handle a chunk; every descriptor received was closed
    // a handover done: training frees 3 cached chunks (tags only), inference claims them, finds
    // them zero-filled and writes its data (a check pattern a chunk)
    expect(await inference.ask("acquire 3")).toMatchObject({ phase: "acquired", freedByTraining: 3, claimed: [5, 6, 7], zeroFilled: 3, notZeroBytes: 0, trainingLost: false });
    expect(await inference.ask<Books>("books")).toMatchObject({ free: 0, train: 5, infer: 3, lockHolder: 0, valid: null, trainingAlive: true, reaped: null });
    return { training, inference, trainingToken: opened.trainingToken };
  }

  /**
   * After training died mid-handover and inference claimed chunks 0 and 1 (training had freed 4,
   * or 3 and 4): the books valid and the lock free, the whole pool held, and a claim takes what is
   * FREE (2, 3, 4) zero-filled; inference ends clean.
   */
  async function goesOnAlone(inference: LineChild, reaped: number): Promise<void> {
    const books = await inference.ask<Books>("books");
    expect(books).toMatchObject({ free: 3, train: 0, infer: 5, lockHolder: 0, valid: null, trainingAlive: false, reaped });
    // the pool's memory is all there: inference's handles hold every chunk
    expect([books.physicalBytes, books.memfds.fds]).toEqual([P * G, P]);
    expect(await inference.ask("acquire 3")).toMatchObject({ freedByTraining: null, claimed: [2, 3, 4], zeroFilled: 3, notZeroBytes: 0 });
    expect(await inference.ask<Books>("books")).toMatchObject({ free: 0, train: 0, infer: P, lockHolder: 0, valid: null });
    await endsClean(inference, [5, 6, 7, 0, 1, 2, 3, 4]);
  }

  /** user + system CPU seconds of a live process so far (/proc: clock ticks of USER_HZ, 100) */
  function cpuSeconds(pid: number): number {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** inference holds `held` chunks with its data intact and usable, and leaves nothing behind */
  async function endsClean(inference: LineChild, held: number[]): Promise<void> {
    expect(await inference.ask("verify")).toEqual({ phase: "verified", held, mismatchedBytes: 0, rewrittenMismatchedBytes: 0 });
    const exited = await inference.ask<{ saidBye: boolean; teardownErrors: string[]; leaks: boolean; memfds: Memfds }>("exit");
    expect(exited).toMatchObject({ saidBye: false, teardownErrors: [], leaks: false });
    // no chunk's memfd open or mapped (the books' mapping goes with its buffer, at collection or exit)
    expect([exited.memfds.fds, exited.memfds.chunkMappings]).toEqual([0, 0]);
    expect(await inference.exited).toMatchObject({ code: 0, signal: null });
  }

  it("killed with SIGKILL mid-handover, holding the books' lock: the handover completes from its reaped chunks, inference's data stays intact", async () => {
    // training stops in its second adjustment, after freeing 1 of the 2 chunks asked for, with the lock held
    const { training, inference, trainingToken } = await pool(["--stall-at", "adjust:2"]);
    inference.send("acquire 2");
    expect(await training.next()).toEqual({ phase: "stalled", op: "adjust", freed: 1, lockHolder: trainingToken });
    training.kill("SIGKILL");
    expect((await training.exited).signal).toBe("SIGKILL");
    // inference sees training's socket close while waiting for its answer: it takes the dead
    // lock over, reaps training's 4 remaining chunks (INV-HO-4) and claims 2, zero-filled: they held training's data
    expect(await inference.next()).toMatchObject({ phase: "acquired", freedByTraining: null, claimed: [0, 1], zeroFilled: 2, notZeroBytes: 0, trainingLost: true, reaped: 4 });
    await goesOnAlone(inference, 4);
  });

  it("killed with SIGKILL holding the books' lock while inference waits for it: inference sleeps, takes the lock over within a bounded time, reaps it and stays valid", async () => {
    // training answers its second adjustment (2 chunks freed) from inside the lock, then stops holding
    // it: inference's claim waits for the lock (a minute allowed: only the takeover may end the wait)
    const { training, inference, trainingToken } = await pool(["--stall-at", "hold:2"], ["--lock-timeout-ms", "60000"]);
    inference.send("acquire 2");
    expect(await training.next()).toEqual({ phase: "stalled", op: "hold", freed: 2, lockHolder: trainingToken });
    // the wait sleeps: a busy loop would burn the whole second
    await new Promise((resolve) => setTimeout(resolve, 200));
    const cpu0 = cpuSeconds(inference.pid);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(cpuSeconds(inference.pid) - cpu0).toBeLessThan(0.3);
    const t0 = performance.now();
    training.kill("SIGKILL");
    // its socket closed: inference takes the lock over, reaps training's 3 chunks (INV-HO-4) and
    // claims the lowest FREE ones, zero-filled: they held training's data
    expect(await inference.next()).toMatchObject({ phase: "acquired", freedByTraining: 2, claimed: [0, 1], zeroFilled: 2, notZeroBytes: 0, trainingLost: true, reaped: 3 });
    expect(performance.now() - t0).toBeLessThan(2000);
    expect((await training.exited).signal).toBe("SIGKILL");
    await goesOnAlone(inference, 3);
  });

  it("stopped alive holding the books' lock: inference's wait ends at its bound with a one-line error, not a hang", async () => {
    const { training, inference, trainingToken } = await pool(["--stall-at", "hold:2"], ["--lock-timeout-ms", "500"]);
    inference.send("acquire 2");
    expect(await training.next()).toMatchObject({ phase: "stalled", op: "hold", lockHolder: trainingToken });
    await expect(inference.next()).rejects.toThrow(
      new RegExp(`^inference ended \\(exit 1\\) before answering: the books' lock: held by the training process \\(token ${trainingToken}\\), whose socket is still open, for \\d+ ms: gave up after 500 ms$`),
    );
    expect((await inference.exited).stderr.trim().split("\n")).toHaveLength(1);
    training.kill("SIGKILL");
  });

  it("killed with SIGKILL mid-reclaim, its data written into a chunk the books still say held inference's: the chunk is zero-filled before inference reads it", async () => {
    // training stops taking inference's chunks home: owners flipped to it, its data in the first,
    // its lastOwner mark not yet written
    const { training, inference } = await pool(["--stall-at", "reclaim:1"]);
    inference.send("give-back");
    expect(await training.next()).toEqual({ phase: "stalled", op: "reclaim", took: [5, 6, 7], lastOwners: [2, 2, 2] });
    training.kill("SIGKILL");
    expect((await training.exited).signal).toBe("SIGKILL");
    expect(await inference.next()).toEqual({ phase: "gave-back", released: 3, reclaimedByTraining: null, trainingLost: true, reaped: P });
    expect(await inference.ask<Books>("books")).toMatchObject({ free: P, train: 0, infer: 0, lockHolder: 0, valid: null, physicalBytes: P * G });
    // a reaped chunk may hold the dead process's data whatever its last owner was: all zero-filled
    expect(await inference.ask("acquire 8")).toMatchObject({ claimed: [0, 1, 2, 3, 4, 5, 6, 7], zeroFilled: P, notZeroBytes: 0 });
    await endsClean(inference, [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("killed with SIGKILL right after a handover: its chunks go FREE when its socket closes, inference's stay intact", async () => {
    const { training, inference } = await pool();
    training.kill("SIGKILL");
    expect((await training.exited).signal).toBe("SIGKILL");
    const books = await inference.ask<Books>("books"); // polls training's socket: closed, so reaped
    expect(books).toMatchObject({ free: 5, train: 0, infer: 3, lockHolder: 0, valid: null, trainingAlive: false, reaped: 5 });
    expect([books.physicalBytes, books.memfds.fds]).toEqual([P * G, P]);
    expect(await inference.ask("verify")).toMatchObject({ mismatchedBytes: 0, rewrittenMismatchedBytes: 0 });
    // training's chunks are inference's to take, each zero-filled: they held training's data
    expect(await inference.ask("acquire 5")).toMatchObject({ freedByTraining: null, claimed: [0, 1, 2, 3, 4], zeroFilled: 5, notZeroBytes: 0, trainingLost: true, reaped: 5 });
    await endsClean(inference, [5, 6, 7, 0, 1, 2, 3, 4]);
  });
});

describe.skipIf(!hostAvailable)("lakebed colocate --backend host", () => {
  it("two llama_infer tenant processes replay their requests through their policies beside shared parameter chunks, data verified across processes, and hand memory over", () => {
    // each tenant: its prologue (the weights' whole windows from the registry, the rest through
    // its policy), then one request at its Poisson arrival (tenant-timeline.ts)
    const scenario = join(repoRoot, "test/fixtures/scenarios/two-infer-live.json");
    const r = lakebed(["colocate", scenario, "--backend", "host", "--verify-data", "--json", "--handover-acquire", "8MiB", "--handover-iterations", "3"], 120_000);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as LiveColocateDocument;
    expect(doc.failures).toEqual([]);
    const d = doc.dedup;
    // alone: each timeline whole through caching on the simulator (414 MiB each); with dedup: each
    // replay's live peak reserved (146 and 148 MiB, the simulator's for the cut timeline) and the
    // 126 whole parameter chunks once (252 MiB)
    expect(d.aloneSumBytes).toBe(828 * MiB);
    expect(d.replays!.map((r) => [r.segmentsRun, r.peakReservedBytes / MiB, r.simulatedPeakBytes / MiB, r.failedAllocs])).toEqual([
      [1, 146, 146, 0],
      [1, 148, 148, 0],
    ]);
    expect(d.replaysAsSimulated).toBe(true);
    // every allocation of both replays filled with its pattern and checked before its free or at the end
    expect(d.replays!.map((r) => [r.verifiedAllocations, r.verifyFailures])).toEqual([
      [17662, 0],
      [17662, 0],
    ]);
    expect(d.tenants.map((t) => t.privateChunks)).toEqual([0, 0]);
    expect(d.dedupBytes).toBe((146 + 148 + 252) * MiB);
    expect(d.tenants.map((t) => t.published + t.imported)).toEqual([126, 126]);
    expect(d.tenants.reduce((a, t) => a + t.published, 0)).toBe(126);
    expect(d.dataVerified).toBe(true);
    expect(d.sharedContentEqual).toBe(true);
    expect(d.verified!.every((v) => Object.keys(v.sharedContent).length === 126)).toBe(true);
    expect(d.registry.whileRunning.keys).toBe(126);
    expect(d.registry.afterExit.fdsHeld).toBe(0);
    expect(d.importDriver.chunks).toBe(126);
    const h = doc.handover;
    expect(h.pool.chunks).toBe(6);
    expect(h.acquireBytes).toBe(8 * MiB);
    expect(h.handover.chunks).toBe(3);
    expect(h.freeThenMalloc.chunks).toBe(3);
    // every chunk inference took held training's data or its own from before: 4 a handover, the warm-up too
    expect(h.zeroFilledChunks).toBe(4 * 4);
    expect(h.notZeroBytes).toBe(0);
    expect(h.vmmCalls).toBe(0);
    expect(h.books).toBeNull();
  });
});

describe("lakebed colocate's live flags", () => {
  it("refuses --html with a live backend in one line (the report draws the simulated strategies)", () => {
    const r = lakebed(["colocate", join(repoRoot, "test/fixtures/scenarios/six-infer.json"), "--backend", "host", "--html", "/tmp/x.html"]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe("lakebed: --html draws the simulated strategies: it goes with --backend sim, not a live run");
  });
});

describe.skipIf(cudaAvailable)("lakebed colocate --backend cuda without a GPU", () => {
  it("says why in one line, exit 2, before starting any process", () => {
    const scenario = join(repoRoot, "test/fixtures/scenarios/six-infer.json");
    const r = lakebed(["colocate", scenario, "--backend", "cuda"]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/--backend cuda: the cuda driver is not available here: /);
  });
});
