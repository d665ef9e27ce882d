// The host tier of a live replay: what the driver's copies really did, that every byte survived
// them, and the serverless shrink of a whole replayed process.
//
// HostTierTap sits under native-cuda's bindDriver (which reads nothing of a Driver but `direct`):
// the policy's calls reach the driver through it unchanged and in the same order, so the recorded
// sequence stays the simulator's, call for call. It adds:
//
// - timing: each copyOut/copyIn's wall time around the addon call (the driver's own time comes
//   from Driver.timeCalls, live-replay.ts), bytes each way, the size of each copy in order (the
//   policy copies runs of adjacent pages in one call), the arena's size;
// - with verifyData, the round-trip check. When a range is copied out, the tap reads it back from
//   the device (before the policy unmaps it) and keeps those bytes, granule by granule, under the
//   arena offset each granule went to; when a range is copied in (a run that left in one copy, part
//   of one, or granules of several), it reads the device range again and compares every byte of
//   each granule with what its arena offset got, and each granule's address must be the one its
//   bytes left from. So every byte of every page (and of
//   every live block on it, whatever its pattern probes) is checked after each copyIn, the moment
//   the bytes are back and before anything can use them; a change counts as a round-trip failure.
//   The allocation patterns are still checked at each free (core-sim's replay loop): a block freed
//   while some of its pages are on the host is checked there too, its resident probes read from the
//   device and those on the host from the bytes kept when their page left (the arena holds exactly
//   those: nothing writes a page on the host, and the copy back is compared byte for byte). The
//   kept bytes are the host tier's live size in this process's memory, besides the arena;
// - the serverless shrink of a live process whatever its policy (shrinkAll/refillAll): every
//   mapped chunk is copied to a pinned arena, unmapped and released (chunks created and not mapped,
//   cached memory, released too), then created again, mapped at the same addresses and copied
//   back. The policy keeps its handle numbers: the tap maps them to the new chunks (alias).
import type { DirectCalls, Driver } from "@lakebed/native-cuda";

/** What the driver's copies did, as the tap saw them (wall time around each addon call). */
export interface CopyFigures {
  calls: number;
  bytes: number;
  /** wall-clock seconds inside the addon calls */
  seconds: number;
}

/** The bytes of each copy, in call order (live-replay.ts pairs them with the driver's own times). */
export interface CopySizes {
  out: number[];
  in: number[];
}

export interface RoundTripFigures {
  /** copy-ins compared byte for byte with what the same offset got at its copy-out */
  roundTrips: number;
  bytesCompared: number;
  /** of them, those whose bytes (or address) differed */
  failures: number;
  /** the first failure, in words ("" when none) */
  firstFailure: string;
  /** frees (pattern checks) of blocks some of whose pages were on the host then */
  checksWithPagesOnHost: number;
}

/**
 * One of the policy's own serverless shrinks (tiering --shrink-at/--shrink-idle), measured live: the
 * shrink is its run of copy-outs (with their unmaps and releases) up to the policy's next chunk
 * creation; the refill, each of those pages brought back later (create, map, access, copy in), on
 * its next use, as the policy does it. The round-trip check's own reads are not counted in either.
 */
export interface PolicyShrinkReport {
  /** the trace event at which the shrink was due */
  eventIndex: number;
  pagesOut: number;
  bytesOut: number;
  /** wall seconds from the shrink's first copy-out to its last call */
  shrinkSeconds: number;
  /** pages brought back since, their bytes, and the seconds their fetches took (summed) */
  pagesBack: number;
  bytesBack: number;
  refillSeconds: number;
  shrinkGiBps: number;
  refillGiBps: number;
}

/** One serverless shrink and refill of the whole process, measured live. */
export interface LiveShrinkReport {
  /** trace event before which it ran */
  eventIndex: number;
  /** the device memory the driver held before the shrink, after it, and after the refill */
  physicalBytesBefore: number;
  physicalBytesAfterShrink: number;
  physicalBytesAfterRefill: number;
  /** chunks copied out and released (mapped with access), bytes copied */
  chunksMoved: number;
  bytesMoved: number;
  /** chunks released without a copy: created and not mapped (cached), or mapped without access */
  chunksReleasedEmpty: number;
  bytesReleasedEmpty: number;
  /** cuMemAlloc'd memory, which cannot move with its address kept: stays resident */
  mallocBytesResident: number;
  /** the pinned arena (cuMemHostAlloc), and the seconds pinning and unpinning it took */
  arenaBytes: number;
  pinSeconds: number;
  unpinSeconds: number;
  /** wall seconds of the shrink (copy out, unmap, release of every chunk) and of the refill
   * (create, map, access, copy in), the arena's pinning excluded */
  shrinkSeconds: number;
  refillSeconds: number;
  /** of which the copies alone */
  shrinkCopySeconds: number;
  refillCopySeconds: number;
  /** bytes moved / seconds, GiB/s: the figures torch_memory_saver reports as pause and resume */
  shrinkGiBps: number;
  refillGiBps: number;
  /** with verifyData: bytes compared after the refill (every byte moved, each through every mapping
   * with access of its chunk), and how many differed (counted once per mapping it differs in) */
  verifiedBytes: number;
  changedBytes: number;
}

const GiB = 1024 ** 3;

/** Copies a Uint8Array's bytes (the scratch buffer is reused). */
const keep = (b: Uint8Array) => Buffer.from(b);

// The check pattern of native-cuda's pattern.h, for the probes a partial check reads itself.
const MASK64 = (1n << 64n) - 1n;
function splitMix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}
/** PatternByte(seed, offset) of pattern.h. */
export function patternByte(seed: number, offset: number): number {
  const word = splitMix64(BigInt(seed) ^ splitMix64(BigInt(Math.floor(offset / 8))));
  return Number((word >> BigInt((offset % 8) * 8)) & 0xffn);
}
const PROBE_HALF = 64;
/** ForEachProbe of pattern.h: the probes [offset, offset + bytes) of a range, in order. */
export function probes(rangeBytes: number, granule: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let done = 0;
  const emit = (from: number, to: number) => {
    from = Math.max(from, done);
    to = Math.min(to, rangeBytes);
    if (from >= to) return;
    done = to;
    out.push([from, to - from]);
  };
  emit(0, PROBE_HALF);
  for (let g = granule; g < rangeBytes; g += granule) emit(g - PROBE_HALF, g + PROBE_HALF);
  emit(rangeBytes > PROBE_HALF ? rangeBytes - PROBE_HALF : 0, rangeBytes);
  return out;
}

export class HostTierTap {
  readonly direct: DirectCalls;
  readonly copyOut: CopyFigures = { calls: 0, bytes: 0, seconds: 0 };
  readonly copyIn: CopyFigures = { calls: 0, bytes: 0, seconds: 0 };
  readonly copySizes: CopySizes = { out: [], in: [] };
  /** the arena the policy reserved (0: none) */
  arenaBytes = 0;
  readonly roundTrip: RoundTripFigures = { roundTrips: 0, bytesCompared: 0, failures: 0, firstFailure: "", checksWithPagesOnHost: 0 };
  readonly shrinks: LiveShrinkReport[] = [];
  readonly policyShrinks: PolicyShrinkReport[] = [];
  /** the policy's shrink being watched: armed before its event, open from its first copy-out */
  private watch: { report: PolicyShrinkReport; open: boolean; start: number; verifying: number } | null = null;
  /** granules (va / granule) of earlier watched shrinks not back yet -> their shrink */
  private shrunkAway = new Map<number, PolicyShrinkReport>();
  /** when the first chunk since the last copy was created (a fetch's run starts there), -1: none */
  private fetchStart = -1;
  private readonly d: DirectCalls;
  private readonly granule: number;
  /** granule index (va / granule) -> whether mapped, for the policy's mappings */
  private readonly mapped = new Set<number>();
  /** the policy's handle -> the driver's handle, after a live shrink re-created its chunk */
  private readonly alias = new Map<number, number>();
  /** verifyData: arena offset of a granule copied out -> its device address and its bytes */
  private readonly kept = new Map<number, { va: number; bytes: Buffer }>();
  /** verifyData: granule index of a page on the host -> the arena offset its bytes went to */
  private readonly away = new Map<number, number>();
  private scratch = new Uint8Array(0);

  /** `verifyData`: keep and compare what crosses the host tier (above). */
  constructor(
    private readonly driver: Driver,
    private readonly verifyData: boolean,
  ) {
    this.d = driver.direct;
    this.granule = driver.granularity();
    const d = this.d;
    const tap = this;
    const real = (h: number) => this.alias.get(h) ?? h;
    this.direct = {
      ...bindAll(d),
      memCreate(bytes) {
        if (tap.fetchStart < 0) tap.fetchStart = performance.now();
        tap.closeShrink();
        return d.memCreate(bytes);
      },
      tryMap(va, bytes, handle, offset) {
        const r = d.tryMap(va, bytes, real(handle), offset);
        if (r === 0) tap.markMapped(va, bytes, true);
        return r;
      },
      unmap(va, bytes) {
        d.unmap(va, bytes);
        tap.markMapped(va, bytes, false);
        tap.shrinkCallEnded();
      },
      memRelease(handle) {
        d.memRelease(real(handle));
        tap.alias.delete(handle);
        tap.shrinkCallEnded();
      },
      hostReserve(bytes) {
        const r = d.hostReserve(bytes);
        if (r === 0) tap.arenaBytes = bytes;
        return r;
      },
      copyOut(va, hostOffset, bytes) {
        const t0 = performance.now();
        tap.shrinkCopyOut(va, bytes, t0);
        d.copyOut(va, hostOffset, bytes);
        tap.copyOut.seconds += (performance.now() - t0) / 1000;
        tap.copyOut.calls++;
        tap.copyOut.bytes += bytes;
        tap.copySizes.out.push(bytes);
        tap.fetchStart = -1;
        if (tap.verifyData) {
          const v0 = performance.now();
          tap.keepCopy(va, hostOffset, bytes);
          if (tap.watch?.open) tap.watch.verifying += performance.now() - v0;
        }
      },
      copyIn(hostOffset, va, bytes) {
        const t0 = performance.now();
        d.copyIn(hostOffset, va, bytes);
        tap.copyIn.seconds += (performance.now() - t0) / 1000;
        tap.copyIn.calls++;
        tap.copyIn.bytes += bytes;
        tap.copySizes.in.push(bytes);
        tap.refilled(va, bytes);
        tap.fetchStart = -1;
        if (tap.verifyData) tap.compareCopy(hostOffset, va, bytes);
      },
      checkPattern(va, bytes, seed) {
        if (tap.away.size === 0 || tap.whollyMapped(va, bytes)) return d.checkPattern(va, bytes, seed);
        tap.roundTrip.checksWithPagesOnHost++;
        return tap.checkPartly(va, bytes, seed);
      },
    };
  }

  /** The policy's shrink due at trace event `eventIndex` is about to run: watch its calls. */
  armShrink(eventIndex: number): void {
    this.closeShrink();
    const report: PolicyShrinkReport = { eventIndex, pagesOut: 0, bytesOut: 0, shrinkSeconds: 0, pagesBack: 0, bytesBack: 0, refillSeconds: 0, shrinkGiBps: 0, refillGiBps: 0 };
    this.policyShrinks.push(report);
    this.watch = { report, open: false, start: 0, verifying: 0 };
  }

  private shrinkCopyOut(va: number, bytes: number, t0: number): void {
    const w = this.watch;
    if (!w) return;
    if (!w.open) {
      w.open = true;
      w.start = t0;
    }
    w.report.pagesOut += bytes / this.granule;
    w.report.bytesOut += bytes;
    for (let g = va / this.granule, end = (va + bytes) / this.granule; g < end; g++) this.shrunkAway.set(g, w.report);
  }

  private shrinkCallEnded(): void {
    const w = this.watch;
    // the round-trip check's reads between its calls are not the shrink's
    if (w?.open) w.report.shrinkSeconds = (performance.now() - w.start - w.verifying) / 1000;
  }

  /** The policy created a chunk: the shrink being watched, if it ran, is over. */
  private closeShrink(): void {
    const w = this.watch;
    if (w?.open) {
      w.report.shrinkGiBps = w.report.bytesOut / 1024 ** 3 / Math.max(w.report.shrinkSeconds, 1e-9);
      this.watch = null;
    }
  }

  /** A copy in brought granules back: those a watched shrink moved count as its refill, with their
   * share of the fetch's time (from its first chunk's creation to the end of the copy). */
  private refilled(va: number, bytes: number): void {
    const granules = bytes / this.granule;
    const seconds = this.fetchStart < 0 ? 0 : (performance.now() - this.fetchStart) / 1000;
    for (let g = va / this.granule, end = g + granules; g < end; g++) {
      const r = this.shrunkAway.get(g);
      if (!r) continue;
      this.shrunkAway.delete(g);
      r.pagesBack++;
      r.bytesBack += this.granule;
      r.refillSeconds += seconds / granules;
      r.refillGiBps = r.bytesBack / 1024 ** 3 / Math.max(r.refillSeconds, 1e-9);
    }
  }

  private markMapped(va: number, bytes: number, on: boolean): void {
    for (let g = va / this.granule, end = (va + bytes) / this.granule; g < end; g++) {
      if (on) {
        this.mapped.add(g);
        this.away.delete(g);
      } else this.mapped.delete(g);
    }
  }

  private whollyMapped(va: number, bytes: number): boolean {
    for (let g = Math.floor(va / this.granule), end = Math.ceil((va + bytes) / this.granule); g < end; g++) if (!this.mapped.has(g)) return false;
    return true;
  }

  private read(va: number, bytes: number): Uint8Array {
    if (this.scratch.length < bytes) this.scratch = new Uint8Array(bytes);
    const view = this.scratch.subarray(0, bytes);
    this.d.copyToHost(va, view, bytes);
    return view;
  }

  private keepCopy(va: number, hostOffset: number, bytes: number): void {
    const all = this.read(va, bytes);
    const g = this.granule;
    for (let at = 0; at < bytes; at += g) {
      this.kept.set(hostOffset + at, { va: va + at, bytes: keep(all.subarray(at, Math.min(at + g, bytes))) });
      this.away.set((va + at) / g, hostOffset + at);
    }
  }

  private fail(why: string): void {
    this.roundTrip.failures++;
    if (this.roundTrip.firstFailure === "") this.roundTrip.firstFailure = why;
  }

  private compareCopy(hostOffset: number, va: number, bytes: number): void {
    this.roundTrip.roundTrips++;
    this.roundTrip.bytesCompared += bytes;
    const hex = (n: number) => `0x${n.toString(16)}`;
    const now = this.read(va, bytes);
    const g = this.granule;
    for (let at = 0; at < bytes; at += g) {
      const before = this.kept.get(hostOffset + at);
      const piece = Math.min(g, bytes - at);
      if (!before) return this.fail(`copyIn from arena offset ${hostOffset + at} to ${hex(va + at)}: nothing was copied out there`);
      if (before.va !== va + at) return this.fail(`copyIn from arena offset ${hostOffset + at} to ${hex(va + at)}: its bytes left from ${hex(before.va)}`);
      if (before.bytes.length !== piece) return this.fail(`copyIn of ${piece} bytes to ${hex(va + at)}: ${before.bytes.length} were copied out`);
      const got = now.subarray(at, at + piece);
      if (!before.bytes.equals(got)) {
        let changed = 0;
        for (let i = 0; i < piece; i++) changed += before.bytes[i] !== got[i] ? 1 : 0;
        return this.fail(`copyIn to ${hex(va + at)}: ${changed} of ${piece} bytes differ from what was copied out`);
      }
    }
  }

  /** A free's pattern check of a block some of whose pages are on the host (above). */
  private checkPartly(va: number, bytes: number, seed: number): number {
    let bad = 0;
    for (const [offset, len] of probes(bytes, this.granule)) {
      // the probe, granule by granule: from the device where mapped, else from the kept copy
      let i = 0;
      while (i < len) {
        const at = va + offset + i;
        const g = Math.floor(at / this.granule);
        const piece = Math.min(len - i, (g + 1) * this.granule - at);
        let got: Uint8Array | undefined;
        if (this.mapped.has(g)) {
          got = this.read(at, piece);
        } else {
          const where = this.away.get(g);
          const copy = where === undefined ? undefined : this.kept.get(where);
          if (copy) {
            const from = at - g * this.granule;
            got = copy.bytes.subarray(from, from + piece);
          }
        }
        for (let k = 0; k < piece; k++) if (!got || got[k] !== patternByte(seed, offset + i + k)) bad++;
        i += piece;
      }
    }
    return bad;
  }

  // ---- the serverless shrink of a whole live process ------------------------------------------

  /**
   * Moves everything the driver holds on the device to a pinned arena, unmaps and releases it (the
   * reservations stay: every address is kept), then brings it back; returns the figures. The
   * driver must hold no arena already (the policy's host tier would be using it). `eventIndex`:
   * where in the trace it ran, for the report.
   *
   * It works chunk by chunk, so that a chunk mapped at several addresses (a policy that aliases one
   * chunk's memory at two ranges, or maps parts of it) keeps being one chunk: its bytes are copied
   * out once (the parts of it that some mapping with access covers, each part through the first
   * such mapping), every mapping of it is unmapped and it is released; the refill creates one chunk
   * of its size, maps it again at every address and offset it had, gives access where it had it,
   * and copies the parts back.
   */
  shrinkAndRefill(eventIndex: number): LiveShrinkReport {
    const d = this.d;
    const report = this.driver.leakReport();
    if (report.hostArenaBytes > 0) throw new Error("live shrink: the policy holds the driver's host arena (its own tiering); shrink with the policy instead (--shrink-at)");
    const physicalBytesBefore = this.driver.counters().physicalBytes;
    // the policy's number for each driver handle (the inverse of alias)
    const policyHandle = new Map<number, number>();
    for (const h of report.handles) policyHandle.set(h.handle, h.handle);
    for (const [p, r] of this.alias) policyHandle.set(r, p);
    type Mapping = (typeof report.mappings)[number];
    type Part = { va: number; bytes: number; hostOffset: number; chunkOffset: number };
    const mappingsOf = new Map<number, Mapping[]>();
    for (const m of report.mappings) {
      const list = mappingsOf.get(m.handle) ?? [];
      list.push(m);
      mappingsOf.set(m.handle, list);
    }
    // each mapped chunk, and the parts of it to copy: the union of its mappings with access, each
    // part read through the first mapping (by offset) that covers it
    const chunks: Array<{ handle: number; bytes: number; released: boolean; policy: number; mappings: Mapping[]; parts: Part[] }> = [];
    let arenaBytes = 0;
    for (const h of report.handles) {
      const mappings = mappingsOf.get(h.handle);
      if (!mappings) continue;
      const parts: Part[] = [];
      let covered = 0;
      for (const m of mappings.filter((x) => x.access).sort((a, b) => a.offset - b.offset)) {
        const from = Math.max(covered, m.offset);
        const to = m.offset + m.bytes;
        if (from < to) {
          parts.push({ va: m.va + (from - m.offset), bytes: to - from, hostOffset: arenaBytes, chunkOffset: from });
          arenaBytes += to - from;
        }
        covered = Math.max(covered, to);
      }
      chunks.push({ handle: h.handle, bytes: h.bytes, released: h.released, policy: policyHandle.get(h.handle) ?? h.handle, mappings, parts });
    }
    let pinSeconds = 0;
    if (arenaBytes > 0) {
      const t0 = performance.now();
      if (d.hostReserve(arenaBytes) !== 0) throw new Error(`live shrink: the host could not pin ${arenaBytes} bytes`);
      pinSeconds = (performance.now() - t0) / 1000;
    }
    const keptCopies = this.verifyData ? new Map<number, Buffer>() : null;
    if (keptCopies) for (const c of chunks) for (const p of c.parts) keptCopies.set(p.va, keep(this.read(p.va, p.bytes)));
    // shrink: copy out, unmap, release
    let shrinkCopySeconds = 0;
    let chunksMoved = 0;
    let chunksReleasedEmpty = 0;
    let bytesReleasedEmpty = 0;
    const t0 = performance.now();
    for (const c of chunks) {
      for (const p of c.parts) {
        const c0 = performance.now();
        d.copyOut(p.va, p.hostOffset, p.bytes);
        shrinkCopySeconds += (performance.now() - c0) / 1000;
      }
      for (const m of c.mappings) d.unmap(m.va, m.bytes);
      if (!c.released) d.memRelease(c.handle);
      if (c.parts.length > 0) chunksMoved++;
      else {
        chunksReleasedEmpty++;
        bytesReleasedEmpty += c.bytes;
      }
    }
    // chunks created and not mapped: cached memory, released; created again at the refill
    const idle = report.handles.filter((h) => h.mappings === 0 && !h.released);
    for (const h of idle) {
      d.memRelease(h.handle);
      chunksReleasedEmpty++;
      bytesReleasedEmpty += h.bytes;
    }
    const shrinkSeconds = (performance.now() - t0) / 1000;
    const physicalBytesAfterShrink = this.driver.counters().physicalBytes;
    // refill: create, map at every address it had, access, copy in
    let refillCopySeconds = 0;
    const t1 = performance.now();
    for (const c of chunks) {
      const h = d.memCreate(c.bytes);
      if (h < 0) throw new Error(`live shrink: the refill could not create a chunk of ${c.bytes} bytes`);
      for (const m of c.mappings) {
        if (d.tryMap(m.va, m.bytes, h, m.offset) !== 0) throw new Error(`live shrink: the refill could not map ${m.bytes} bytes back`);
        if (m.access && d.trySetAccess(m.va, m.bytes) !== 0) throw new Error("live shrink: the refill could not set access");
      }
      for (const p of c.parts) {
        const c0 = performance.now();
        d.copyIn(p.hostOffset, p.va, p.bytes);
        refillCopySeconds += (performance.now() - c0) / 1000;
      }
      if (c.released) d.memRelease(h);
      else this.alias.set(c.policy, h);
    }
    for (const h of idle) {
      const n = d.memCreate(h.bytes);
      if (n < 0) throw new Error(`live shrink: the refill could not create a chunk of ${h.bytes} bytes`);
      this.alias.set(policyHandle.get(h.handle) ?? h.handle, n);
    }
    const refillSeconds = (performance.now() - t1) / 1000;
    let unpinSeconds = 0;
    if (arenaBytes > 0) {
      const t2 = performance.now();
      d.hostRelease();
      unpinSeconds = (performance.now() - t2) / 1000;
    }
    let verifiedBytes = 0;
    let changedBytes = 0;
    if (keptCopies) {
      // every part, through every mapping with access of its chunk (an alias must show the same
      // bytes again)
      for (const c of chunks) {
        for (const p of c.parts) verifiedBytes += p.bytes;
        for (const m of c.mappings) {
          if (!m.access) continue;
          for (const p of c.parts) {
            const before = keptCopies.get(p.va)!;
            // the part's chunk offsets, seen through mapping m
            const partOffset = p.chunkOffset;
            const from = Math.max(partOffset, m.offset);
            const to = Math.min(partOffset + p.bytes, m.offset + m.bytes);
            if (from >= to) continue;
            const now = this.read(m.va + (from - m.offset), to - from);
            const was = before.subarray(from - partOffset, to - partOffset);
            if (!was.equals(now)) for (let i = 0; i < to - from; i++) changedBytes += was[i] !== now[i] ? 1 : 0;
          }
        }
      }
    }
    const bytesMoved = arenaBytes;
    const shrink: LiveShrinkReport = {
      eventIndex,
      physicalBytesBefore,
      physicalBytesAfterShrink,
      physicalBytesAfterRefill: this.driver.counters().physicalBytes,
      chunksMoved,
      bytesMoved,
      chunksReleasedEmpty,
      bytesReleasedEmpty,
      mallocBytesResident: report.mallocs.reduce((n, m) => n + m.bytes, 0),
      arenaBytes,
      pinSeconds,
      unpinSeconds,
      shrinkSeconds,
      refillSeconds,
      shrinkCopySeconds,
      refillCopySeconds,
      shrinkGiBps: bytesMoved / GiB / Math.max(shrinkSeconds, 1e-9),
      refillGiBps: bytesMoved / GiB / Math.max(refillSeconds, 1e-9),
      verifiedBytes,
      changedBytes,
    };
    this.shrinks.push(shrink);
    return shrink;
  }
}

/** The addon's methods bound to it, as a plain record (the tap replaces some). */
function bindAll(d: DirectCalls): DirectCalls {
  const out: Record<string, unknown> = {};
  const names = new Set<string>();
  for (let o: object | null = d; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) for (const k of Object.getOwnPropertyNames(o)) names.add(k);
  for (const k of names) {
    if (k === "constructor") continue;
    const v = (d as unknown as Record<string, unknown>)[k];
    if (typeof v === "function") out[k] = (v as (...a: unknown[]) => unknown).bind(d);
  }
  return out as unknown as DirectCalls;
}
