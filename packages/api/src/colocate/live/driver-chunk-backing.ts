// The shared pool's books (shared-pool.ts) backed by a driver's memory: every chunk a shareable
// handle made once and mapped once, in one range with one setAccess (as the inference side of a
// handover maps its pool), and a zero-fill a memset through that mapping, timed. The books do not
// change: the pool calls zeroFill exactly where it did with the cost model, and the chunks' bytes
// now say whether the books were right (a tenant finds zeros or its own data in what it is given).
import type { Driver } from "@lakebed/native-cuda";
import { CHUNK_BYTES, type ChunkBacking } from "../shared-pool.js";

export class DriverChunkBacking implements ChunkBacking {
  readonly va: number;
  readonly handles: number[] = [];
  private readonly one = new Uint8Array(1);
  private readonly window = new Uint8Array(4096);

  constructor(
    private readonly driver: Driver,
    readonly chunks: number,
  ) {
    if (driver.granularity() !== CHUNK_BYTES) throw new Error(`the driver's granularity is ${driver.granularity()} bytes; the pool's chunks are ${CHUNK_BYTES}`);
    for (let c = 0; c < chunks; c++) {
      const h = driver.memCreateShareable(CHUNK_BYTES);
      if (h < 0) throw new Error(`out of memory at chunk ${c} of ${chunks}`);
      this.handles.push(h);
    }
    this.va = driver.addressReserve(chunks * CHUNK_BYTES);
    for (let c = 0; c < chunks; c++) driver.map(this.va + c * CHUNK_BYTES, CHUNK_BYTES, this.handles[c]);
    driver.setAccess(this.va, chunks * CHUNK_BYTES);
  }

  /**
   * memset 0 through the pool's mapping (it returns with the bytes set: the cuda backend waits for
   * the context since 4fdcbce), then a one-byte read (the wait before that; kept); the microseconds
   * it took.
   */
  zeroFill(chunk: number): number {
    const t0 = process.hrtime.bigint();
    this.driver.memset(this.vaOf(chunk), 0, CHUNK_BYTES);
    this.driver.copyToHost(this.vaOf(chunk), this.one, 1);
    return Number(process.hrtime.bigint() - t0) / 1000;
  }

  /** A tenant's data: every byte of the chunk set to `value` (nonzero, one per tenant). */
  fill(chunk: number, value: number): void {
    this.driver.memset(this.vaOf(chunk), value, CHUNK_BYTES);
  }

  /** The distinct byte values of three 4 KiB windows (start, middle, end) of the chunk. */
  sample(chunk: number): Set<number> {
    const seen = new Set<number>();
    for (const at of [0, CHUNK_BYTES / 2, CHUNK_BYTES - this.window.length]) {
      this.driver.copyToHost(this.vaOf(chunk) + at, this.window, this.window.length);
      for (const b of this.window) seen.add(b);
    }
    return seen;
  }

  vaOf(chunk: number): number {
    return this.va + chunk * CHUNK_BYTES;
  }
}
