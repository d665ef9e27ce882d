// The books of a handover pool, in shared memory that both processes map (a memfd: the training
// side creates it and sends it with the pool): one lock and, per chunk, its owner and the owner
// whose data it last held. Moving a chunk between processes is a change here (Sirius' tag flip),
// never a driver call: both processes keep their mappings of every chunk.
//
//   Int32 words:  [0] lock (0 free, else the holder's pid)   [1] chunks
//                 [2 + 2c] owner of chunk c                  [3 + 2c] last owner of chunk c
//
// INV-HO-1  every chunk has exactly one owner: FREE, TRAIN or INFER.
// INV-HO-2  owners change only under the lock.
// INV-HO-3  a process reads or writes a chunk only while it owns it, and only after zero-filling
//           it when its last owner was another process (so no process reads another's data).
// INV-HO-4  ownership follows socket lifetime: when a process's socket closes (it exited or was
//           killed, SIGKILL included), the one left reaps it: its chunks go FREE with it as their
//           last owner (they may hold its data, so whoever claims them zero-fills them), and a lock
//           it held is released (its critical section stopped between two one-word stores, so
//           every owner word is valid). The memory stays: the survivor's handles hold every chunk.
export const FREE = 0;
export const TRAIN = 1;
export const INFER = 2;

const HEADER_WORDS = 2;

export class HandoverBooks {
  readonly words: Int32Array;

  constructor(buffer: ArrayBuffer) {
    this.words = new Int32Array(buffer);
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

  /** A spin lock: the critical sections are a few hundred tag changes. */
  withLock<T>(body: () => T): T {
    while (Atomics.compareExchange(this.words, 0, 0, process.pid) !== 0) {
      // the other process holds it for microseconds
    }
    try {
      return body();
    } finally {
      Atomics.store(this.words, 0, 0);
    }
  }

  /** The pid holding the lock, or 0. */
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
   * INV-HO-4: `owner`'s process is gone (its socket closed; `pid` was its pid). A lock it held is
   * released, then, under the lock, each of its chunks goes FREE with it as the last owner.
   * Returns how many chunks it held.
   */
  reap(owner: number, pid: number): number {
    Atomics.compareExchange(this.words, 0, pid, 0);
    return this.withLock(() => {
      let n = 0;
      for (let c = 0; c < this.chunks; c++)
        if (this.owner(c) === owner) {
          this.setLastOwner(c, owner);
          this.setOwner(c, FREE);
          n++;
        }
      return n;
    });
  }

  /** Walks INV-HO-1; the first broken one, or null. */
  isValid(): string | null {
    for (let c = 0; c < this.chunks; c++) {
      const o = this.owner(c);
      if (o !== FREE && o !== TRAIN && o !== INFER) return `INV-HO-1: chunk ${c} has owner ${o}`;
    }
    return null;
  }
}
