// The books of a handover pool, in shared memory that both processes map (a memfd: the training
// side creates it and sends it with the pool): one lock and, per chunk, its owner and the owner
// whose data it last held. Moving a chunk between processes is a change here (Sirius' tag flip),
// never a driver call: both processes keep their mappings of every chunk.
//
//   Int32 words:  [0] lock (0 free, else the holder's token)   [1] chunks
//                 [2 + 2c] owner of chunk c                    [3 + 2c] last owner of chunk c
//
// A process's token is a random nonzero int32 it draws when it maps the books and announces to its
// peer over their socket at connect (training's in the "books" message, inference's in its
// "hello"). It is the lock's identity, not the pid: a pid means nothing across pid namespaces
// (SO_PEERCRED gives the peer's pid as seen from the receiver's namespace, process.pid is the
// holder's own), and a token is not recycled as pids are: a later process draws its own (equal to
// an earlier one's by a chance of 1 in 2^31), and the two peers' never match (checked at connect).
//
// INV-HO-1  every chunk has exactly one owner: FREE, TRAIN or INFER.
// INV-HO-2  owners change only under the lock.
// INV-HO-3  a process reads or writes a chunk only while it owns it, and only after zero-filling
//           it when its last owner was another process (so no process reads another's data).
// INV-HO-4  ownership follows socket lifetime: a process touches the books only while its socket
//           to the other is open (it closes it after its last use), and when that socket closes
//           (it exited or was killed, SIGKILL included) the one left reaps it: its chunks go FREE
//           with it as their last owner (they may hold its data, so whoever claims them zero-fills
//           them), and a lock it held is taken over (its critical section stopped between two
//           one-word stores, so every owner word is valid). A process waiting for the lock asks
//           whether the holder's socket closed; if so it takes the lock over and reaps the holder
//           before its own critical section. The memory stays: the survivor's handles hold every
//           chunk.
import { randomInt } from "node:crypto";

export const FREE = 0;
export const TRAIN = 1;
export const INFER = 2;

const HEADER_WORDS = 2;

/** How long a waiter waits for a live holder before it gives up (a critical section takes microseconds). */
export const LOCK_TIMEOUT_MS = 10_000;
/** Tries before the first sleep: the holder is most likely in its few microseconds. */
const LOCK_SPINS = 200;
/** The back-off's first and longest sleep (ms): a dead holder is seen within about the longest. */
const LOCK_SLEEP_MS = [0.02, 2] as const;
// a sleep without a busy loop: Atomics.wait on a word nobody notifies. Not on the lock word itself:
// the books' buffer is an ArrayBuffer over a MAP_SHARED mapping, not a SharedArrayBuffer (on which
// alone Atomics.wait works), and V8's waiters live in one process: the other could not notify them.
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/** The other process on the books, as its socket tells of it. */
export interface BooksPeer {
  /** the token it announced over the socket */
  token: number;
  /** its owner tag in the books: TRAIN or INFER */
  owner: number;
  /** what to call it in an error ("the training process") */
  name: string;
  /** whether its socket has closed (INV-HO-4: it is gone and touches the books no more) */
  gone(): boolean;
}

export class HandoverBooks {
  readonly words: Int32Array;
  /** this process's identity in the lock word */
  readonly token: number;
  readonly lockTimeoutMs: number;
  private peer: BooksPeer | null = null;
  private reapedPeer: number | null = null;

  constructor(buffer: ArrayBuffer, o: { token?: number; lockTimeoutMs?: number } = {}) {
    this.words = new Int32Array(buffer);
    this.token = o.token ?? HandoverBooks.newToken();
    if (!isToken(this.token)) throw new Error(`a books token is a nonzero int32, got ${this.token}`);
    this.lockTimeoutMs = o.lockTimeoutMs ?? LOCK_TIMEOUT_MS;
    if (!(this.lockTimeoutMs > 0)) throw new Error(`the books' lock timeout is a positive number of ms, got ${this.lockTimeoutMs}`);
  }

  /** A random token, none of `taken` (the peer's, so that the two never match). */
  static newToken(...taken: number[]): number {
    for (;;) {
      const t = randomInt(1, 2 ** 31);
      if (!taken.includes(t)) return t;
    }
  }

  static bytesFor(chunks: number): number {
    return 4 * (HEADER_WORDS + 2 * chunks);
  }

  get chunks(): number {
    return this.words[1];
  }

  init(chunks: number, owner: number): void {
    this.words[1] = chunks;
    for (let c = 0; c < chunks; c++) {
      this.words[2 + 2 * c] = owner;
      this.words[3 + 2 * c] = owner;
    }
  }

  /** The other process, once it announced its token over the socket. */
  setPeer(peer: BooksPeer): void {
    if (!isToken(peer.token) || peer.token === this.token) throw new Error(`${peer.name} announced books token ${JSON.stringify(peer.token)}: a nonzero int32 other than ${this.token} was expected`);
    if (peer.owner !== TRAIN && peer.owner !== INFER) throw new Error(`a peer owns chunks as TRAIN or INFER, not ${peer.owner}`);
    this.peer = peer;
  }

  /** How many chunks the peer held when it was reaped (INV-HO-4), or null while it has not been. */
  get peerReaped(): number | null {
    return this.reapedPeer;
  }

  owner(c: number): number {
    return Atomics.load(this.words, 2 + 2 * c);
  }

  lastOwner(c: number): number {
    return this.words[3 + 2 * c];
  }

  /** Under the lock: the chunk passes to `owner`; its last owner stays whose data it holds. */
  setOwner(c: number, owner: number): void {
    Atomics.store(this.words, 2 + 2 * c, owner);
  }

  /** The chunk now holds `owner`'s data (or zeros it made): after a zero-fill. */
  setLastOwner(c: number, owner: number): void {
    this.words[3 + 2 * c] = owner;
  }

  /**
   * `body` under the lock. A waiter spins briefly (critical sections are a few hundred tag
   * changes), then sleeps with a doubling back-off; while it sleeps it asks whether the holder's
   * socket closed, and if so takes the lock over and reaps the holder (INV-HO-4) before `body`.
   * A holder that stays alive past lockTimeoutMs, or a token that is nobody's, is an error.
   */
  withLock<T>(body: () => T): T {
    const tookOver = this.acquire();
    try {
      if (tookOver) this.reapPeerLocked();
      return body();
    } finally {
      const held = Atomics.compareExchange(this.words, 0, this.token, 0);
      if (held !== this.token) throw new Error(`INV-HO-2: the books' lock was taken from this process (token ${this.token}) by token ${held} while it held it`);
    }
  }

  /** The token holding the lock, or 0. */
  lockHolder(): number {
    return Atomics.load(this.words, 0);
  }

  /** Chunks by owner. */
  counts(): { free: number; train: number; infer: number } {
    const out = { free: 0, train: 0, infer: 0 };
    for (let c = 0; c < this.chunks; c++) {
      const o = this.owner(c);
      if (o === FREE) out.free++;
      else if (o === TRAIN) out.train++;
      else if (o === INFER) out.infer++;
    }
    return out;
  }

  /**
   * INV-HO-4: the peer's socket closed. A lock it held is taken over, then, under the lock, each
   * of its chunks goes FREE with it as the last owner. Once: returns how many chunks it held.
   */
  reapPeer(): number {
    return this.withLock(() => this.reapPeerLocked());
  }

  /** Walks INV-HO-1; the first broken one, or null. */
  isValid(): string | null {
    for (let c = 0; c < this.chunks; c++) {
      const o = this.owner(c);
      if (o !== FREE && o !== TRAIN && o !== INFER) return `INV-HO-1: chunk ${c} has owner ${o}`;
    }
    return null;
  }

  /** Takes the lock; true when it was taken over from a peer that is gone (to be reaped). */
  private acquire(): boolean {
    const w = this.words;
    const start = performance.now();
    let sleepMs: number = LOCK_SLEEP_MS[0];
    for (let tries = 1; ; tries++) {
      const held = Atomics.compareExchange(w, 0, 0, this.token);
      if (held === 0) return false;
      if (held === this.token) throw new Error(`the books' lock is already held by this process (token ${held}): withLock does not nest`);
      if (tries < LOCK_SPINS) continue;
      const peer = this.peer;
      const peerHolds = peer !== null && held === peer.token;
      // the holder's critical section stopped between two one-word stores: every word is valid
      if (peerHolds && peer.gone()) {
        if (Atomics.compareExchange(w, 0, held, this.token) === held) return true;
        continue;
      }
      const waited = performance.now() - start;
      if (waited >= this.lockTimeoutMs) {
        const who = peerHolds ? `${peer.name} (token ${held}), whose socket is still open` : `token ${held}, neither this process's (${this.token}) nor its peer's (${peer === null ? "not announced yet" : peer.token})`;
        throw new Error(`the books' lock: held by ${who}, for ${Math.round(waited)} ms: gave up after ${this.lockTimeoutMs} ms`);
      }
      Atomics.wait(SLEEPER, 0, 0, Math.min(sleepMs, this.lockTimeoutMs - waited));
      sleepMs = Math.min(2 * sleepMs, LOCK_SLEEP_MS[1]);
    }
  }

  /** Under the lock: the peer's chunks go FREE with it as their last owner (once). */
  private reapPeerLocked(): number {
    if (this.reapedPeer !== null) return this.reapedPeer;
    const peer = this.peer;
    if (peer === null) throw new Error("reaping a peer that never announced itself");
    let n = 0;
    for (let c = 0; c < this.chunks; c++)
      if (this.owner(c) === peer.owner) {
        this.setLastOwner(c, peer.owner);
        this.setOwner(c, FREE);
        n++;
      }
    this.reapedPeer = n;
    return n;
  }
}

function isToken(t: unknown): t is number {
  return Number.isInteger(t) && (t as number) !== 0 && (t as number) >= -(2 ** 31) && (t as number) < 2 ** 31;
}
