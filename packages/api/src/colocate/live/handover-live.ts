// Sirius-style handover between two real processes on one pool (reference A.2, 6.3). The training
// process creates the pool once (shareable chunks, mapped in its own range, filled with its data)
// and the books (handover-books.ts), and sends the books and every chunk to the inference process
// once, at most FD_BATCH (128) descriptors a message, after checking its uid (SO_PEERCRED). The
// inference process imports every chunk, closes each descriptor at once, and maps the whole pool
// once, with one setAccess over it (Sirius' static mapping region). From then on a handover is:
//
//   inference: "adjust K"  ->  training: K of its cached chunks to FREE in the books (no free, no
//   unmap: its stale mappings stay, lazy unmap)  ->  inference: claims K FREE chunks under the lock,
//   zero-fills those whose last owner was training (memset through its mapping, one call per run of
//   adjacent chunks, each returning with its bytes set, then a 1-byte read).
//
// Its latency is measured from the request to the zero-fill done, with no driver call on the
// inference side but the memsets (the run counts them: vmmCalls must stay 0). Beside it, in the same
// processes, PyTorch's path: training frees a cudaMalloc'd block of the same size, inference mallocs
// one (cuMemFree + cuMemAlloc, plus the message; without the wait for training's step to end).
//
// Training, the pool's exporter, may die at any point (SIGKILL included): inference's imported
// handles keep every chunk, and when it sees training's socket close (an answer that never comes, a
// send refused, a poll, or a wait for the books' lock training holds) it reaps training's share of
// the books (INV-HO-4: training's chunks FREE and to be zero-filled, a lock it held taken over) and
// goes on claiming from the pool alone. The books know each process by a random token announced
// over the socket at connect (training's in "books", inference's in "hello"), not by its pid.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { FD_BATCH, POLLHUP, POLLIN, openDriver, recvMessage, sendMessage, shareSockets, type Driver, type DriverKind } from "@lakebed/native-cuda";
import { HandoverBooks, FREE, INFER, TRAIN } from "./handover-books.js";
import { CHUNK_BYTES } from "../shared-pool.js";
import { LineChild } from "./child-lines.js";
import { perChunk, type PerChunkCost } from "./live-dedup.js";

export interface HandoverOptions {
  backend: DriverKind;
  device?: number;
  /** socket address ('@name': abstract namespace) */
  path: string;
  poolBytes: number;
  /** what inference acquires each time (1 GiB in Sirius' comparison) */
  acquireBytes: number;
  iterations: number;
  /**
   * For the crash tests, training stops at the n-th request of this kind (1 = the first) until it
   * is killed, after printing {phase: "stalled"}: in an adjustment, having freed half the chunks
   * asked for, holding the books' lock; in a reclaim, having taken the FREE chunks back and
   * written its data into the first, before marking it its own (lastOwner); "hold": in the n-th
   * adjustment, having answered it from inside the books' lock, still holding it (inference's
   * claim then waits for the lock)
   */
  stallAt?: { op: "adjust" | "reclaim" | "hold"; n: number };
  /** how long a wait for the books' lock held by a live peer may last (ms; HandoverBooks' default) */
  lockTimeoutMs?: number;
}

type Request = { op: "hello"; token: number } | { op: "adjust"; chunks: number } | { op: "reclaim" } | { op: "free" } | { op: "remalloc" } | { op: "done" };

// each side's data: a byte neither zero nor the other's, written with memset (a 1 GiB pattern fill
// would take the CPU a second an iteration); a skipped zero-fill shows as that byte in the sample
const TRAIN_BYTE = 0x7a;
const INFER_BYTE = 0x1f;
const VMM_CALLS = ["memCreate", "memRelease", "addressReserve", "addressFree", "map", "setAccess", "unmap", "malloc", "free"] as const;

/**
 * memset over [va, va+bytes), which may span several chunks' mappings: one call, and where the
 * driver refuses a range across allocations, one call a chunk.
 */
function memsetChunks(d: Driver, va: number, value: number, bytes: number): void {
  try {
    d.memset(va, value, bytes);
  } catch (e) {
    if (bytes === CHUNK_BYTES) throw e;
    for (let at = 0; at < bytes; at += CHUNK_BYTES) d.memset(va + at, value, CHUNK_BYTES);
  }
}

/** Training empties up to `k` chunks of its cache, the highest first: tags only (its mappings stay:
 * lazy unmap). Under the books' lock. Returns how many it freed. */
function freeTrainingChunks(books: HandoverBooks, chunks: number, k: number): number {
  let n = 0;
  for (let c = chunks - 1; c >= 0 && n < k; c--)
    if (books.owner(c) === TRAIN) {
      books.setOwner(c, FREE);
      n++;
    }
  return n;
}

/** Training takes back every FREE chunk (the ones inference gave back). Under the books' lock. */
function takeFreeChunks(books: HandoverBooks, chunks: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < chunks; c++)
    if (books.owner(c) === FREE) {
      books.setOwner(c, TRAIN);
      out.push(c);
    }
  return out;
}

/** Whether the peer's end of the socket closed (INV-HO-4: it is gone). */
function socketClosed(s: ReturnType<typeof shareSockets>, fd: number): boolean {
  return fd < 0 || (s.poll([fd], 0)[0] & POLLHUP) !== 0;
}

function nowNs(): bigint {
  return process.hrtime.bigint();
}

/** The training side: serves one inference process, then tears down. `print` gets its lines. */
export function runHandoverTraining(o: HandoverOptions, print: (doc: unknown) => void): void {
  const s = shareSockets();
  const d = openDriver(o.backend, { device: o.device ?? 0 });
  const G = CHUNK_BYTES;
  const P = Math.floor(o.poolBytes / G);
  const handles: number[] = [];
  for (let c = 0; c < P; c++) {
    const h = d.memCreateShareable(G);
    if (h < 0) throw new Error(`out of memory creating pool chunk ${c} of ${P}`);
    handles.push(h);
  }
  const va = d.addressReserve(P * G);
  for (let c = 0; c < P; c++) d.map(va + c * G, G, handles[c]);
  d.setAccess(va, P * G);
  memsetChunks(d, va, TRAIN_BYTE, P * G); // training's data, which inference must never read
  const booksFd = s.shmCreate(HandoverBooks.bytesFor(P));
  const books = new HandoverBooks(s.shmMap(booksFd, HandoverBooks.bytesFor(P)), { lockTimeoutMs: o.lockTimeoutMs });
  books.init(P, TRAIN);
  let block = d.malloc(o.acquireBytes); // the free-then-malloc path's cached block
  const listenFd = s.listen(o.path);
  print({ phase: "ready", pid: process.pid, chunks: P });
  const peer = s.accept(listenFd);
  s.close(listenFd);
  if (peer.uid !== process.getuid!()) {
    sendMessage(peer.fd, { op: "refused", why: `uid ${peer.uid} is not ${process.getuid!()}` });
    s.close(peer.fd);
    throw new Error(`refused a peer of uid ${peer.uid}`);
  }
  sendMessage(peer.fd, { op: "books", chunks: P, chunkBytes: G, token: books.token }, [booksFd]);
  s.close(booksFd);
  const exportDriverNs: number[] = [];
  const exportWallNs: number[] = [];
  for (let b = 0; b < P; b += FD_BATCH) {
    const t0 = nowNs();
    const fds: number[] = [];
    for (let c = b; c < Math.min(P, b + FD_BATCH); c++) {
      const e = d.exportHandle(handles[c]);
      exportDriverNs.push(e.driverNs);
      fds.push(e.fd);
    }
    sendMessage(peer.fd, { op: "chunks", first: b, count: fds.length }, fds);
    for (const fd of fds) s.close(fd);
    const each = Number(nowNs() - t0) / fds.length;
    for (let i = 0; i < fds.length; i++) exportWallNs.push(each);
  }
  const seen = new Map<string, number>();
  const stall = (doc: Record<string, unknown>) => {
    print({ phase: "stalled", ...doc });
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // until killed
  };
  for (;;) {
    const got = recvMessage<Request>(peer.fd);
    if (got === null) break;
    const m = got.message;
    seen.set(m.op, (seen.get(m.op) ?? 0) + 1);
    const stallOp = o.stallAt?.op === "hold" ? "adjust" : o.stallAt?.op;
    const stallHere = stallOp === m.op && o.stallAt?.n === seen.get(m.op);
    if (m.op === "hello") {
      // inference's token in the books (INV-HO-4: a lock it held when its socket closed is taken over)
      books.setPeer({ token: m.token, owner: INFER, name: "the inference process", gone: () => socketClosed(s, peer.fd) });
    } else if (m.op === "adjust" && stallHere && o.stallAt?.op === "hold") {
      books.withLock(() => {
        const freed = freeTrainingChunks(books, P, m.chunks);
        sendMessage(peer.fd, { op: "adjusted", freed });
        stall({ op: "hold", freed, lockHolder: books.lockHolder() });
      });
    } else if (m.op === "adjust" && stallHere) {
      books.withLock(() => {
        const n = freeTrainingChunks(books, P, Math.ceil(m.chunks / 2));
        stall({ op: m.op, freed: n, lockHolder: books.lockHolder() });
      });
    } else if (m.op === "reclaim" && stallHere) {
      const back = books.withLock(() => takeFreeChunks(books, P));
      if (back.length > 0) d.memset(va + back[0] * G, TRAIN_BYTE, G);
      stall({ op: m.op, took: back, lastOwners: back.map((c) => books.lastOwner(c)) });
    } else if (m.op === "adjust") {
      // training empties K chunks of its cache: tags only (its mappings stay: lazy unmap)
      const freed = books.withLock(() => freeTrainingChunks(books, P, m.chunks));
      sendMessage(peer.fd, { op: "adjusted", freed });
    } else if (m.op === "reclaim") {
      // the chunks inference gave back come home: zero-filled (they held inference's data), then
      // training's data again
      const back = books.withLock(() => takeFreeChunks(books, P));
      for (const c of back) {
        if (books.lastOwner(c) !== TRAIN) d.memset(va + c * G, 0, G);
        books.setLastOwner(c, TRAIN);
        d.memset(va + c * G, TRAIN_BYTE, G);
      }
      sendMessage(peer.fd, { op: "reclaimed", chunks: back.length });
    } else if (m.op === "free") {
      d.free(block);
      sendMessage(peer.fd, { op: "freed" });
    } else if (m.op === "remalloc") {
      block = d.malloc(o.acquireBytes);
      sendMessage(peer.fd, { op: "remalloced" });
    } else if (m.op === "done") {
      sendMessage(peer.fd, { op: "bye", exportDriver: perChunk(exportDriverNs), exportWall: perChunk(exportWallNs), books: books.isValid() });
      break;
    }
  }
  s.close(peer.fd);
  const t = d.teardown();
  print({ phase: "done", teardownErrors: t.errors });
}

export interface HandoverMeasured {
  backend: DriverKind;
  driver: string;
  pool: { chunks: number; bytes: number };
  /** receiving the pool: import + map per chunk (driver functions alone, and as seen with the close) */
  importDriver: PerChunkCost;
  importWall: PerChunkCost;
  /** the one setAccess over the whole pool (us) */
  setAccessWholePoolUs: number;
  exportDriver: PerChunkCost;
  exportWall: PerChunkCost;
  acquireBytes: number;
  iterations: number;
  /** request -> training's tags -> claim -> zero-fill done (us), after one warm-up handover */
  handover: PerChunkCost;
  /** the warm-up handover (us): the first touch of the chunks through inference's mapping */
  warmUpUs: number;
  zeroFilledChunks: number;
  /** sampled bytes of claimed chunks that were not zero after the zero-fill (must be 0) */
  notZeroBytes: number;
  /** driver calls other than memset and the synchronizing read made by inference while handing over (must be 0) */
  vmmCalls: number;
  /** training's cudaFree of the block, then inference's cudaMalloc (us) */
  freeThenMalloc: PerChunkCost;
  books: string | null;
}

function vmmCalls(d: Driver): number {
  const calls = d.counters().calls;
  return VMM_CALLS.reduce((a, k) => a + calls[k], 0);
}

/**
 * The inference process's side of the pool: connects to the training process, receives the books
 * and every chunk, imports each (closing its descriptor at once), maps the whole pool once and
 * sets access with one call. A handover is `ask({op: "adjust"})` then `claim`.
 */
export class HandoverInference {
  readonly d: Driver;
  readonly books: HandoverBooks;
  readonly chunks: number;
  /** the pool's mapping in this process: chunk c at va + c * CHUNK_BYTES */
  readonly va: number;
  /** the training process's pid (SO_PEERCRED of the connection), as this pid namespace sees it: reported, never an identity in the books */
  readonly trainingPid: number;
  /** the training process's token in the books, which it announced with them */
  readonly trainingToken: number;
  readonly importDriverNs: number[] = [];
  readonly importWallNs: number[] = [];
  readonly setAccessWholePoolUs: number;
  private readonly s = shareSockets();
  private fd: number;

  constructor(o: Pick<HandoverOptions, "backend" | "device" | "path" | "lockTimeoutMs">) {
    const s = this.s;
    const d = (this.d = openDriver(o.backend, { device: o.device ?? 0 }));
    const G = CHUNK_BYTES;
    this.fd = s.connect(o.path);
    this.trainingPid = s.peerCred(this.fd).pid;
    const first = recvMessage<{ op: string; chunks: number; chunkBytes: number; token: number; why?: string }>(this.fd);
    if (first === null || first.message.op !== "books") throw new Error(`the training process: ${first?.message.why ?? "closed"}`);
    const P = (this.chunks = first.message.chunks);
    this.trainingToken = first.message.token;
    this.books = new HandoverBooks(s.shmMap(first.fds[0], HandoverBooks.bytesFor(P)), { token: HandoverBooks.newToken(this.trainingToken), lockTimeoutMs: o.lockTimeoutMs });
    s.close(first.fds[0]); // the mapping keeps the books
    this.books.setPeer({ token: this.trainingToken, owner: TRAIN, name: "the training process", gone: () => socketClosed(s, this.fd) });
    sendMessage(this.fd, { op: "hello", token: this.books.token } satisfies Request);
    const va = (this.va = d.addressReserve(P * G));
    d.timeCalls(true);
    for (let got = 0; got < P; ) {
      const m = recvMessage<{ op: string; first: number; count: number }>(this.fd);
      if (m === null || m.message.op !== "chunks") throw new Error("the pool did not arrive");
      if (m.fds.length > FD_BATCH) throw new Error(`${m.fds.length} descriptors in one message: more than ${FD_BATCH}`);
      m.fds.forEach((chunkFd, i) => {
        d.takeCallTimes();
        const t0 = nowNs();
        const imp = d.importHandle(chunkFd, G);
        s.close(chunkFd);
        d.map(va + (m.message.first + i) * G, G, imp.handle);
        this.importWallNs.push(Number(nowNs() - t0));
        const t = d.takeCallTimes();
        this.importDriverNs.push(imp.driverNs + Math.max(0, t.driverNs[0] ?? 0));
      });
      got += m.fds.length;
    }
    d.timeCalls(false);
    const t0 = nowNs();
    d.setAccess(va, P * G); // the static mapping region: once, over the whole pool
    this.setAccessWholePoolUs = Number(nowNs() - t0) / 1000;
  }

  /** training's socket closed and its chunks were reaped (INV-HO-4): how many it held then */
  get reaped(): number | null {
    return this.books.peerReaped;
  }

  get trainingLost(): boolean {
    return this.reaped !== null;
  }

  /**
   * One request to training and its answer; null when training is gone (its socket closed,
   * before or while it answered: exited or killed, mid-adjustment too): then its chunks are
   * reaped (INV-HO-4) and what it had not done is not done.
   */
  ask(m: Request): Record<string, unknown> | null {
    if (this.trainingLost) return null;
    let got: { message: Record<string, unknown> } | null = null;
    try {
      sendMessage(this.fd, m);
      got = recvMessage(this.fd);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== "EPIPE" && code !== "ECONNRESET") throw e; // the peer is gone: as a closed socket
    }
    if (got === null) {
      this.lost();
      return null;
    }
    return got.message;
  }

  /** Whether training is still there: its socket is polled, and a closed one reaps it. */
  trainingAlive(): boolean {
    if (this.trainingLost) return false;
    const [revents] = this.s.poll([this.fd], 0);
    if ((revents & POLLHUP) !== 0) this.lost();
    else if ((revents & POLLIN) !== 0) {
      // training speaks only to answer: anything but the close is the protocol broken
      const got = recvMessage(this.fd);
      if (got !== null) {
        for (const fd of got.fds) this.s.close(fd);
        throw new Error(`the training process sent ${JSON.stringify(got.message)} unasked`);
      }
      this.lost();
    }
    return !this.trainingLost;
  }

  /**
   * Claims up to `k` FREE chunks under the lock, zero-fills those whose last owner was another
   * process (one memset per run of adjacent chunks, each returning with its bytes set, then a
   * one-byte read), and marks them its own data. Returns the chunks claimed and how many were
   * zero-filled.
   */
  claim(k: number): { claimed: number[]; zeroFilled: number } {
    const d = this.d;
    const G = CHUNK_BYTES;
    const books = this.books;
    const claimed = books.withLock(() => {
      const out: number[] = [];
      for (let c = 0; c < this.chunks && out.length < k; c++)
        if (books.owner(c) === FREE) {
          books.setOwner(c, INFER);
          out.push(c);
        }
      return out;
    });
    const dirty = claimed.filter((c) => books.lastOwner(c) !== INFER);
    for (let i = 0; i < dirty.length; ) {
      let j = i + 1;
      while (j < dirty.length && dirty[j] === dirty[j - 1] + 1) j++;
      memsetChunks(d, this.va + dirty[i] * G, 0, (j - i) * G);
      i = j;
    }
    // the memsets have landed already (the cuda backend's memset waits for the context since
    // 4fdcbce; before, this read was the wait): kept, as every measured handover made it
    if (dirty.length > 0) d.copyToHost(this.va + dirty[dirty.length - 1] * G, new Uint8Array(1), 1);
    for (const c of dirty) books.setLastOwner(c, INFER);
    return { claimed, zeroFilled: dirty.length };
  }

  /** Gives chunks back to the pool (FREE, still holding its data: the next owner zero-fills). */
  release(chunks: readonly number[]): void {
    this.books.withLock(() => {
      for (const c of chunks) this.books.setOwner(c, FREE);
    });
  }

  /** Says goodbye to training when it is there (its answer, else null), closes the socket, tears the driver down. */
  close(): { bye: Record<string, unknown> | null; teardownErrors: string[]; leaks: boolean } {
    const bye = this.trainingLost ? null : this.ask({ op: "done" });
    this.s.close(this.fd);
    this.fd = -1;
    const t = this.d.teardown();
    return { bye, teardownErrors: t.errors, leaks: !this.d.leakReport().clean };
  }

  /** INV-HO-4: training's socket closed; its chunks go FREE, a lock it held is taken over. */
  private lost(): void {
    this.books.reapPeer();
  }
}

/** Descriptors and mappings of memfds in this process (/proc/self): chunks, and the books'. */
export function memfdsHere(): { fds: number; chunkMappings: number; booksMappings: number } {
  let fds = 0;
  for (const name of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${name}`).startsWith("/memfd:")) fds++;
    } catch {
      // the directory's own descriptor, closed by now
    }
  }
  const maps = readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((l) => l.includes("/memfd:"));
  const books = maps.filter((l) => l.includes("lakebed:share-books")).length;
  return { fds, chunkMappings: maps.length - books, booksMappings: books };
}

/**
 * An inference process that takes commands (live-child's `handover-tenant`, for the crash tests):
 * `acquire K` (a handover: training adjusts, inference claims K chunks, checks they read zero and
 * writes its data: a check pattern per chunk), `verify` (every chunk it holds keeps its pattern,
 * then takes a new one: still usable), `books` (the books' counts, training polled), `give-back`
 * (everything it holds to the pool, training asked to reclaim it) and `exit` (tears down; the memfds left in this process). Training may die at any point:
 * INV-HO-4.
 */
export class HandoverTenant {
  private readonly inf: HandoverInference;
  /** the chunks it holds and the pattern seed of each */
  private readonly held = new Map<number, number>();
  private round = 0;

  constructor(o: Pick<HandoverOptions, "backend" | "device" | "path" | "lockTimeoutMs">) {
    this.inf = new HandoverInference(o);
  }

  get opened(): Record<string, unknown> {
    return { phase: "connected", pid: process.pid, chunks: this.inf.chunks, trainingPid: this.inf.trainingPid, trainingToken: this.inf.trainingToken, token: this.inf.books.token, memfds: memfdsHere() };
  }

  /** One command; its answer, and whether it was the last. */
  command(line: string): { answer: Record<string, unknown>; last: boolean } {
    const [op, arg] = line.split(/\s+/);
    const inf = this.inf;
    const d = inf.d;
    const G = CHUNK_BYTES;
    if (op === "acquire") {
      const k = Number(arg);
      if (!Number.isInteger(k) || k < 1) throw new Error(`acquire: a chunk count, got ${JSON.stringify(arg)}`);
      const adjusted = inf.ask({ op: "adjust", chunks: k });
      const { claimed, zeroFilled } = inf.claim(k);
      const buf = new Uint8Array(G);
      let notZero = 0;
      for (const c of claimed) {
        d.copyToHost(inf.va + c * G, buf, G);
        for (const b of buf) if (b !== 0) notZero++;
        const seed = this.seedOf(c);
        d.fillPattern(inf.va + c * G, G, seed);
        this.held.set(c, seed);
      }
      return {
        answer: { phase: "acquired", asked: k, freedByTraining: (adjusted?.freed as number | undefined) ?? null, claimed, zeroFilled, notZeroBytes: notZero, trainingLost: inf.trainingLost, reaped: inf.reaped },
        last: false,
      };
    }
    if (op === "verify") {
      let mismatched = 0;
      for (const [c, seed] of this.held) mismatched += d.checkPattern(inf.va + c * G, G, seed);
      this.round++;
      let rewritten = 0;
      for (const c of this.held.keys()) {
        const seed = this.seedOf(c);
        d.fillPattern(inf.va + c * G, G, seed);
        this.held.set(c, seed);
        rewritten += d.checkPattern(inf.va + c * G, G, seed);
      }
      return { answer: { phase: "verified", held: [...this.held.keys()], mismatchedBytes: mismatched, rewrittenMismatchedBytes: rewritten }, last: false };
    }
    if (op === "books") {
      const trainingAlive = inf.trainingAlive();
      return {
        answer: {
          phase: "books", ...inf.books.counts(), lockHolder: inf.books.lockHolder(), valid: inf.books.isValid(), held: this.held.size, trainingAlive, reaped: inf.reaped,
          physicalBytes: d.counters().physicalBytes, memfds: memfdsHere(),
        },
        last: false,
      };
    }
    if (op === "give-back") {
      // every chunk it holds back to the pool, and training asked to take them home
      inf.release([...this.held.keys()]);
      const released = this.held.size;
      this.held.clear();
      const reclaimed = inf.ask({ op: "reclaim" });
      return { answer: { phase: "gave-back", released, reclaimedByTraining: (reclaimed?.chunks as number | undefined) ?? null, trainingLost: inf.trainingLost, reaped: inf.reaped }, last: false };
    }
    if (op === "exit") {
      const { bye, teardownErrors, leaks } = inf.close();
      return { answer: { phase: "exited", saidBye: bye !== null, teardownErrors, leaks, memfds: memfdsHere() }, last: true };
    }
    throw new Error(`unknown command ${JSON.stringify(line)} (acquire K, verify, books, give-back, exit)`);
  }

  private seedOf(c: number): number {
    return 0x1f0000 + this.round * 0x1000 + c;
  }
}

/** The inference side: receives the pool, maps it once, measures, and says goodbye. */
export function runHandoverInference(o: HandoverOptions): HandoverMeasured {
  const inf = new HandoverInference(o);
  const d = inf.d;
  const G = CHUNK_BYTES;
  const P = inf.chunks;
  const va = inf.va;
  const send = (m: Request): Record<string, unknown> => {
    const got = inf.ask(m);
    if (got === null) throw new Error("the training process closed the connection");
    return got;
  };
  const K = Math.floor(o.acquireBytes / G);
  const probe = new Uint8Array(4096);
  const handoverNs: number[] = [];
  let warmUpNs = 0;
  let zeroFilled = 0;
  let notZero = 0;
  let vmm = 0;
  // one warm-up handover first, not counted: the first touch of each page through this process's
  // mapping (page-table entries on host memory) is a start-up cost, not a handover's
  for (let it = -1; it < o.iterations; it++) {
    const calls0 = vmmCalls(d);
    const start = nowNs();
    send({ op: "adjust", chunks: K });
    const { claimed, zeroFilled: dirty } = inf.claim(K);
    if (claimed.length < K) throw new Error(`claimed ${claimed.length} chunks of ${K}`);
    if (it >= 0) handoverNs.push(Number(nowNs() - start));
    else warmUpNs = Number(nowNs() - start);
    vmm += vmmCalls(d) - calls0;
    zeroFilled += dirty;
    // untimed: the claimed chunks read zero (a sample of each), then inference writes its data
    for (const c of claimed) {
      const at = (((it + 1) * 7 + c) * 4096) % (G - 4096); // it starts at -1 (the warm-up)
      d.copyToHost(va + c * G + at, probe, probe.length);
      for (const b of probe) if (b !== 0) notZero++;
      d.memset(va + c * G, INFER_BYTE, G);
    }
    inf.release(claimed);
    send({ op: "reclaim" });
  }
  const freeMallocNs: number[] = [];
  for (let it = -1; it < o.iterations; it++) {
    const start = nowNs();
    send({ op: "free" });
    const block = d.malloc(o.acquireBytes);
    if (it >= 0) freeMallocNs.push(Number(nowNs() - start)); // the same warm-up, not counted
    if (block < 0) throw new Error("out of memory in free-then-malloc");
    d.free(block);
    send({ op: "remalloc" });
  }
  const driver = d.info().description;
  const closed = inf.close();
  const bye = closed.bye as { exportDriver: PerChunkCost; exportWall: PerChunkCost; books: string | null } | null;
  if (bye === null) throw new Error("the training process closed the connection");
  return {
    backend: o.backend,
    driver,
    pool: { chunks: P, bytes: P * G },
    importDriver: perChunk(inf.importDriverNs),
    importWall: perChunk(inf.importWallNs),
    setAccessWholePoolUs: inf.setAccessWholePoolUs,
    exportDriver: bye.exportDriver,
    exportWall: bye.exportWall,
    acquireBytes: K * G,
    iterations: o.iterations,
    handover: perChunk(handoverNs),
    warmUpUs: warmUpNs / 1000,
    zeroFilledChunks: zeroFilled,
    notZeroBytes: notZero,
    vmmCalls: vmm,
    freeThenMalloc: perChunk(freeMallocNs),
    books: bye.books ?? inf.books.isValid(),
  };
}

/** Both processes, started here; the inference side's measurements. */
export async function runLiveHandover(o: Omit<HandoverOptions, "path">): Promise<HandoverMeasured> {
  const path = `@lakebed-handover-${process.pid}-${Date.now()}`;
  const args = ["--backend", o.backend, "--device", String(o.device ?? 0), "--path", path, "--pool-bytes", String(o.poolBytes), "--acquire-bytes", String(o.acquireBytes), "--iterations", String(o.iterations)];
  const training = new LineChild("the training process", ["handover-train", ...args]);
  let inference: LineChild | null = null;
  try {
    await training.next(); // ready: the pool exists and the socket listens
    inference = new LineChild("the inference process", ["handover-infer", ...args]);
    const measured = await inference.next<HandoverMeasured & { phase: string }>();
    const done = await training.next<{ teardownErrors: string[] }>();
    if (done.teardownErrors.length > 0) throw new Error(`training's teardown: ${done.teardownErrors.join("; ")}`);
    await Promise.all([training.exited, inference.exited]);
    const { phase: _phase, ...rest } = measured;
    return rest;
  } finally {
    training.kill();
    inference?.kill();
  }
}
