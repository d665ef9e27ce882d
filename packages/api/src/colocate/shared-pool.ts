// The shared pool: one device's physical memory as 2 MiB chunks that every tenant's policy draws
// from, with an owner on each chunk (Sirius' mpool tags, reference section A.2). It only keeps
// the books; what backs a chunk (counters in the simulator, a driver's handles on a GPU) is a
// ChunkBacking (chunk-backing.ts), called where the books say memory must really change.
//
//   chunk c:  state[c]      FREE | HELD | LOCAL_FREE | SHARED
//             owner[c]      the tenant holding it (HELD, LOCAL_FREE), -1 when FREE or SHARED
//             content[c]    whose data it holds: ZERO, a tenant (its id), or a shared key
//                           (SHARED_CONTENT_BASE + key); the tests' stand-in for its bytes
//             refs[c]       SHARED: the tenants that map it (dedup), else 0
//             reserved[c]   FREE: kept for inference by the reserve rule (Sirius' M_rsv)
//             queuedBy[c]   LOCAL_FREE: the tenant whose queued kernels may still write it
//
// LOCAL_FREE is Sirius' kTrainLocalFree: the tenant freed it but kernels it queued may still
// write it, so it goes to nobody else until the tenant's queue is drained (drain()). A chunk that
// changes owner is zero-filled first, so no tenant ever reads another's data.
//
// INV-POOL-1  every chunk is in exactly one state, and the counts add up: free + held + localFree
//             + shared = chunks; per tenant, held and localFree match the chunks it owns.
// INV-POOL-2  a HELD chunk is mapped writable by its owner alone; no chunk is mapped writable by
//             two tenants; a SHARED chunk is mapped by nobody writable.
// INV-POOL-3  a SHARED chunk has refs = the number of tenants that map it read-only, refs > 0,
//             and it is the registry's chunk for its key; every registry key names a SHARED chunk.
// INV-POOL-4  a tenant can read only chunks whose content is ZERO, its own, or a shared key's:
//             what it holds (HELD, LOCAL_FREE) and what it maps read-only.
// INV-POOL-5  reserved chunks are FREE.

export const FREE = 0;
export const HELD = 1;
export const LOCAL_FREE = 2;
export const SHARED = 3;
export type ChunkState = typeof FREE | typeof HELD | typeof LOCAL_FREE | typeof SHARED;

export const CHUNK_BYTES = 2 * 1024 * 1024;
/** content of a chunk nobody has written since it was zero-filled (or since the device started) */
export const ZERO = -1;
/** content keys of shared chunks start here, above every tenant id */
export const SHARED_CONTENT_BASE = 1 << 20;

/** What really happens to memory when the books change (a driver, or the simulator's counters). */
export interface ChunkBacking {
  /** zero the chunk before it changes owner; returns the microseconds it took (or is charged) */
  zeroFill(chunk: number): number;
}

/** Deliberate mistakes for the property tests to catch (test/colocate-pool.test.ts). */
export type PoolFault = "none" | "skip-zero-fill" | "double-unref" | "share-writable" | "reuse-local-free";

export class PoolError extends Error {
  override readonly name = "PoolError";
}

export class SharedPool {
  readonly chunks: number;
  readonly state: Uint8Array;
  readonly owner: Int32Array;
  readonly content: Int32Array;
  readonly refs: Int32Array;
  readonly reserved: Uint8Array;
  readonly queuedBy: Int32Array;
  /** chunk -> the tenants that map it writable / read-only */
  private readonly writers = new Map<number, Set<number>>();
  private readonly readers = new Map<number, Set<number>>();
  /** shared key -> its chunk (dedup registry) */
  private readonly registry = new Map<number, number>();
  /** per tenant: chunks held and locally freed (INV-POOL-1) */
  private readonly heldBy = new Map<number, Set<number>>();
  private readonly localFreeBy = new Map<number, Set<number>>();
  /** FREE chunks not reserved, and reserved ones, as stacks (claims take the top) */
  private readonly freeStack: number[] = [];
  private readonly reserveStack: number[] = [];
  zeroFills = 0;
  zeroFillMicros = 0;

  constructor(
    capacityBytes: number,
    private readonly backing: ChunkBacking,
    private readonly fault: PoolFault = "none",
  ) {
    this.chunks = Math.floor(capacityBytes / CHUNK_BYTES);
    if (this.chunks < 1) throw new PoolError(`a pool needs at least one ${CHUNK_BYTES}-byte chunk, got ${capacityBytes} bytes`);
    this.state = new Uint8Array(this.chunks);
    this.owner = new Int32Array(this.chunks).fill(-1);
    this.content = new Int32Array(this.chunks).fill(ZERO);
    this.refs = new Int32Array(this.chunks);
    this.reserved = new Uint8Array(this.chunks);
    this.queuedBy = new Int32Array(this.chunks).fill(-1);
    for (let c = this.chunks - 1; c >= 0; c--) this.freeStack.push(c);
  }

  get freeChunks(): number {
    return this.freeStack.length + this.reserveStack.length;
  }
  get unreservedFreeChunks(): number {
    return this.freeStack.length;
  }
  get reservedChunks(): number {
    return this.reserveStack.length;
  }
  heldCount(tenant: number): number {
    return this.heldBy.get(tenant)?.size ?? 0;
  }
  localFreeCount(tenant: number): number {
    return this.localFreeBy.get(tenant)?.size ?? 0;
  }
  get sharedChunks(): number {
    return this.registry.size;
  }

  /**
   * n chunks for `tenant`, taken from its own LOCAL_FREE chunks first (its queue orders them), then
   * from the reserve when `fromReserve`, then from unreserved FREE chunks; null (nothing taken)
   * when there are not enough. Each chunk another tenant's data was in is zero-filled first.
   */
  claim(tenant: number, n: number, fromReserve = false): number[] | null {
    const own = this.localFreeBy.get(tenant);
    const available = (own?.size ?? 0) + this.freeStack.length + (fromReserve ? this.reserveStack.length : 0);
    if (n > available) return null;
    const out: number[] = [];
    if (own) {
      for (const c of own) {
        if (out.length === n) break;
        out.push(c);
      }
      for (const c of out) own.delete(c);
    }
    while (out.length < n && fromReserve && this.reserveStack.length > 0) out.push(this.takeTop(this.reserveStack));
    while (out.length < n) out.push(this.takeTop(this.freeStack));
    if (this.fault === "reuse-local-free") this.stealLocalFree(tenant, out);
    const held = this.setOf(this.heldBy, tenant);
    for (const c of out) {
      if (this.content[c] !== ZERO && this.content[c] !== tenant && this.fault !== "skip-zero-fill") {
        this.zeroFillMicros += this.backing.zeroFill(c);
        this.zeroFills++;
        this.content[c] = ZERO;
      }
      // its own queue writes it in stream order, before any later use
      if (this.owner[c] === tenant) this.queuedBy[c] = -1;
      this.state[c] = HELD;
      this.owner[c] = tenant;
      held.add(c);
    }
    return out;
  }

  /**
   * The tenant gives chunks back: FREE at once, or LOCAL_FREE (`queued`) while kernels it queued
   * may still write them. Its mappings of them must be gone.
   */
  release(tenant: number, chunks: readonly number[], queued = false): void {
    const held = this.heldBy.get(tenant);
    for (const c of chunks) {
      if (this.state[c] !== HELD || this.owner[c] !== tenant || !held?.has(c)) throw new PoolError(`release: chunk ${c} is not held by tenant ${tenant}`);
      if ((this.writers.get(c)?.size ?? 0) > 0) throw new PoolError(`release: chunk ${c} is still mapped`);
      held.delete(c);
      if (queued) {
        this.state[c] = LOCAL_FREE;
        this.queuedBy[c] = tenant;
        this.setOf(this.localFreeBy, tenant).add(c);
      } else {
        this.makeFree(c);
      }
    }
  }

  /**
   * The tenant's queue is drained (a step boundary, an adjustment): the kernels it had queued have
   * run, and written what they were to write (into its LOCAL_FREE chunks, whose content is now
   * its data), and those chunks are FREE.
   */
  drain(tenant: number): number {
    const own = this.localFreeBy.get(tenant);
    if (!own) return 0;
    const n = own.size;
    for (let c = 0; c < this.chunks; c++) {
      if (this.queuedBy[c] !== tenant) continue;
      this.content[c] = tenant;
      this.queuedBy[c] = -1;
    }
    for (const c of own) this.makeFree(c);
    own.clear();
    return n;
  }

  /** Sirius' reserve: FREE chunks kept for inference (up to n of them); returns how many moved. */
  reserve(n: number): number {
    let moved = 0;
    while (moved < n && this.freeStack.length > 0) {
      const c = this.takeTop(this.freeStack);
      this.reserved[c] = 1;
      this.reserveStack.push(c);
      moved++;
    }
    return moved;
  }
  /** Gives n reserved chunks back to everyone (the 2W rule's release down to W). */
  unreserve(n: number): number {
    let moved = 0;
    while (moved < n && this.reserveStack.length > 0) {
      const c = this.reserveStack.pop()!;
      this.reserved[c] = 0;
      this.freeStack.push(c);
      moved++;
    }
    return moved;
  }

  /** The tenant maps a chunk it holds, writable (cuMemMap + cuMemSetAccess read-write). */
  mapWritable(tenant: number, chunk: number): void {
    if (this.state[chunk] !== HELD || this.owner[chunk] !== tenant) throw new PoolError(`map: tenant ${tenant} does not hold chunk ${chunk}`);
    const x = this.content[chunk];
    if (x !== ZERO && x !== tenant) throw new PoolError(`INV-POOL-4: tenant ${tenant} maps chunk ${chunk}, which holds ${x < SHARED_CONTENT_BASE ? `tenant ${x}'s` : "shared"} data (not zero-filled)`);
    this.setOf(this.writers, chunk).add(tenant);
  }
  unmap(tenant: number, chunk: number): void {
    this.writers.get(chunk)?.delete(tenant);
  }
  /** The tenant writes its data into a chunk it holds (the simulator's stand-in for its bytes). */
  write(tenant: number, chunk: number): void {
    if (!this.writers.get(chunk)?.has(tenant)) throw new PoolError(`write: tenant ${tenant} has no writable mapping of chunk ${chunk}`);
    this.content[chunk] = tenant;
  }

  /**
   * Dedup: the tenant maps the chunk whose content is `key`, read-only. The first tenant with a key
   * publishes it: a fresh chunk (zero-filled where needed) is filled with the key's content; later
   * ones take a reference. Null when no chunk is free for a first publication.
   */
  mapShared(tenant: number, key: number): number | null {
    let c = this.registry.get(key);
    if (c === undefined) {
      const got = this.claim(tenant, 1);
      if (got === null) return null;
      c = got[0];
      this.heldBy.get(tenant)!.delete(c);
      this.owner[c] = -1;
      this.state[c] = SHARED;
      this.content[c] = SHARED_CONTENT_BASE + key;
      this.registry.set(key, c);
    }
    const readers = this.setOf(this.readers, c);
    if (readers.has(tenant)) throw new PoolError(`mapShared: tenant ${tenant} maps key ${key} twice`);
    readers.add(tenant);
    if (this.fault === "share-writable") this.setOf(this.writers, c).add(tenant);
    this.refs[c]++;
    return c;
  }

  /** The tenant drops its read-only mapping of `key`; the chunk is freed with the last reference. */
  unmapShared(tenant: number, key: number): void {
    const c = this.registry.get(key);
    if (c === undefined || !this.readers.get(c)?.has(tenant)) throw new PoolError(`unmapShared: tenant ${tenant} does not map key ${key}`);
    this.readers.get(c)!.delete(tenant);
    this.writers.get(c)?.delete(tenant);
    this.refs[c] -= this.fault === "double-unref" && this.refs[c] > 1 ? 2 : 1;
    if (this.refs[c] <= 0) {
      this.refs[c] = 0;
      this.registry.delete(key);
      for (const r of this.readers.get(c) ?? []) this.readers.get(c)!.delete(r);
      this.makeFree(c);
    }
  }

  /**
   * The tenant is gone (an exit or a crash: the same to the pool, whose references follow the
   * process's lifetime, as an FD-passing registry's follow its socket): its chunks are freed
   * (those its queue may still write too: a dead process's queue is gone), its mappings dropped,
   * its shared references returned.
   */
  exit(tenant: number): void {
    for (const [c, w] of this.writers) if (w.has(tenant)) w.delete(tenant);
    for (const [key, c] of [...this.registry]) if (this.readers.get(c)?.has(tenant)) this.unmapShared(tenant, key);
    this.drain(tenant);
    const held = this.heldBy.get(tenant);
    if (held) for (const c of [...held]) this.release(tenant, [c]);
  }

  /** Which chunks the tenant can read now (what it holds, and what it maps read-only). */
  readable(tenant: number): number[] {
    const out = [...(this.heldBy.get(tenant) ?? []), ...(this.localFreeBy.get(tenant) ?? [])];
    for (const [c, r] of this.readers) if (r.has(tenant)) out.push(c);
    return out;
  }

  /** The number of the first broken invariant (INV-POOL-n), or 0. */
  brokenInvariant(): number {
    let free = 0, held = 0, localFree = 0, shared = 0;
    for (let c = 0; c < this.chunks; c++) {
      const s = this.state[c];
      if (s === FREE) free++;
      else if (s === HELD) held++;
      else if (s === LOCAL_FREE) localFree++;
      else if (s === SHARED) shared++;
      else return 1;
    }
    if (free + held + localFree + shared !== this.chunks || free !== this.freeStack.length + this.reserveStack.length) return 1;
    let heldSum = 0, localSum = 0;
    for (const [t, set] of this.heldBy) for (const c of set) { heldSum++; if (this.state[c] !== HELD || this.owner[c] !== t) return 1; }
    for (const [t, set] of this.localFreeBy) for (const c of set) { localSum++; if (this.state[c] !== LOCAL_FREE || this.owner[c] !== t) return 1; }
    if (heldSum !== held || localSum !== localFree) return 1;
    for (const [c, w] of this.writers) {
      if (w.size > 1) return 2;
      for (const t of w) if (this.state[c] !== HELD || this.owner[c] !== t) return 2;
    }
    if (shared !== this.registry.size) return 3;
    for (const [key, c] of this.registry) {
      const r = this.readers.get(c)?.size ?? 0;
      if (this.state[c] !== SHARED || this.content[c] !== SHARED_CONTENT_BASE + key || this.refs[c] !== r || r === 0) return 3;
    }
    for (const t of this.tenants()) {
      for (const c of this.readable(t)) {
        const x = this.content[c];
        if (x !== ZERO && x !== t && x < SHARED_CONTENT_BASE) return 4;
      }
    }
    for (const c of this.reserveStack) if (this.state[c] !== FREE || this.reserved[c] !== 1) return 5;
    for (const c of this.freeStack) if (this.state[c] !== FREE || this.reserved[c] !== 0) return 5;
    return 0;
  }

  private tenants(): Set<number> {
    const out = new Set<number>([...this.heldBy.keys(), ...this.localFreeBy.keys()]);
    for (const r of this.readers.values()) for (const t of r) out.add(t);
    return out;
  }

  private makeFree(c: number): void {
    this.state[c] = FREE;
    this.queuedBy[c] = -1;
    this.owner[c] = -1;
    this.reserved[c] = 0;
    this.freeStack.push(c);
  }

  private takeTop(stack: number[]): number {
    const c = stack.pop()!;
    this.reserved[c] = 0;
    return c;
  }

  /** the reuse-local-free fault: another tenant's LOCAL_FREE chunks handed out as if FREE */
  private stealLocalFree(tenant: number, out: number[]): void {
    for (const [t, set] of this.localFreeBy) {
      if (t === tenant || set.size === 0 || out.length === 0) continue;
      const c = set.values().next().value!;
      set.delete(c);
      this.makeFree(out.pop()!);
      out.push(c);
      return;
    }
  }

  private setOf(map: Map<number, Set<number>>, key: number): Set<number> {
    let s = map.get(key);
    if (!s) map.set(key, (s = new Set()));
    return s;
  }
}
