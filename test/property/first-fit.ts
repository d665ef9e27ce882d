import type { Allocation, AllocatorUnderTest, LiveBlock, PolicyUnderTest, ReservedRange, DeviceEvent } from "./allocator-under-test.js";

/**
 * A deliberately plain first-fit allocator, here only to exercise the harness itself (a known-good
 * subject, and known-bad ones through `bug`). It is not a lakebed policy and never runs a trace.
 *
 * Segments are whole multiples of 2 MiB at fresh addresses, one stream each; blocks tile a segment
 * in address order; malloc takes the first free block that fits, splitting off the rest; free merges
 * with free neighbours; empty_cache gives back segments that are one free block.
 */
export type FirstFitBug =
  | "split-off-by-one" // the remainder of a split starts 512 bytes early
  | "merge-non-adjacent" // free merges with the next free block even across an allocated one
  | "missed-stats" // free forgets to lower allocated_bytes of the large pool
  | "cross-stream" // a free block of any stream is reused
  | "leak-on-release"; // empty_cache forgets to lower reserved_bytes

interface Block {
  address: number;
  sizeBytes: number;
  free: boolean;
  handle: number;
  requestedBytes: number;
  stream: number;
  small: boolean;
}

interface Segment {
  address: number;
  sizeBytes: number;
  stream: number;
  blocks: Block[];
}

const BLOCK_BYTES = 512;
const SEGMENT_ROUND_BYTES = 2 * 1024 * 1024;
const SMALL_LIMIT_BYTES = 1024 * 1024;

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

export class FirstFitAllocator implements AllocatorUnderTest {
  private segments: Segment[] = [];
  private nextAddress = 2 ** 34;
  private nextHandle = 1;
  private capacityBytes: number | null = null;
  private readonly counters: Record<string, number> = {};
  private events: DeviceEvent[] = [];

  constructor(private readonly bug?: FirstFitBug) {
    for (const base of ["allocation", "active", "allocated_bytes", "active_bytes", "requested_bytes", "reserved_bytes", "segment"]) {
      for (const pool of ["all", "small_pool", "large_pool"]) {
        for (const m of ["current", "peak", "allocated", "freed"]) this.counters[`${base}.${pool}.${m}`] = 0;
      }
    }
    this.counters.num_ooms = 0;
  }

  malloc(requestedBytes: number, stream: number): Allocation | null {
    const sizeBytes = roundUp(Math.max(requestedBytes, 1), BLOCK_BYTES);
    let found = this.find(sizeBytes, stream);
    if (!found) {
      const segBytes = roundUp(sizeBytes, SEGMENT_ROUND_BYTES);
      if (this.capacityBytes !== null && this.counters["reserved_bytes.all.current"] + segBytes > this.capacityBytes) this.emptyCache();
      if (this.capacityBytes !== null && this.counters["reserved_bytes.all.current"] + segBytes > this.capacityBytes) {
        this.counters.num_ooms++;
        return null;
      }
      const seg: Segment = { address: this.nextAddress, sizeBytes: segBytes, stream, blocks: [] };
      seg.blocks.push({ address: seg.address, sizeBytes: segBytes, free: true, handle: 0, requestedBytes: 0, stream, small: false });
      this.nextAddress += segBytes + SEGMENT_ROUND_BYTES;
      this.segments.push(seg);
      this.events.push({ action: "segment_alloc", address: seg.address, sizeBytes: segBytes });
      this.update("segment", false, 1);
      this.update("reserved_bytes", false, segBytes);
      found = { seg, index: 0 };
    }
    const { seg, index } = found;
    const b = seg.blocks[index];
    const rest = b.sizeBytes - sizeBytes;
    if (rest >= BLOCK_BYTES) {
      const at = this.bug === "split-off-by-one" ? b.address + sizeBytes - BLOCK_BYTES : b.address + sizeBytes;
      seg.blocks.splice(index + 1, 0, { address: at, sizeBytes: rest, free: true, handle: 0, requestedBytes: 0, stream: seg.stream, small: false });
      b.sizeBytes = sizeBytes;
    }
    b.free = false;
    b.handle = this.nextHandle++;
    b.requestedBytes = requestedBytes;
    b.stream = stream;
    b.small = sizeBytes <= SMALL_LIMIT_BYTES;
    for (const base of ["allocation", "active"]) this.update(base, b.small, 1);
    for (const base of ["allocated_bytes", "active_bytes"]) this.update(base, b.small, b.sizeBytes);
    this.update("requested_bytes", b.small, requestedBytes);
    return { handle: b.handle, address: b.address, sizeBytes: b.sizeBytes };
  }

  free(handle: number): void {
    for (const seg of this.segments) {
      const i = seg.blocks.findIndex((b) => !b.free && b.handle === handle);
      if (i < 0) continue;
      const b = seg.blocks[i];
      b.free = true;
      for (const base of ["allocation", "active"]) this.update(base, b.small, -1);
      if (!(this.bug === "missed-stats" && !b.small)) this.update("allocated_bytes", b.small, -b.sizeBytes);
      this.update("active_bytes", b.small, -b.sizeBytes);
      this.update("requested_bytes", b.small, -b.requestedBytes);
      const next = this.bug === "merge-non-adjacent" ? seg.blocks.findIndex((n, k) => k > i && n.free) : i + 1;
      if (next > i && seg.blocks[next]?.free) {
        b.sizeBytes = seg.blocks[next].address + seg.blocks[next].sizeBytes - b.address;
        seg.blocks.splice(i + 1, next - i);
      }
      const prev = seg.blocks[i - 1];
      if (prev?.free) {
        prev.sizeBytes += b.sizeBytes;
        seg.blocks.splice(i, 1);
      }
      return;
    }
    throw new Error(`first-fit: free of unknown handle ${handle}`);
  }

  emptyCache(): void {
    this.segments = this.segments.filter((seg) => {
      if (seg.blocks.length !== 1 || !seg.blocks[0].free) return true;
      this.update("segment", false, -1);
      if (this.bug !== "leak-on-release") this.update("reserved_bytes", false, -seg.sizeBytes);
      this.events.push({ action: "segment_free", address: seg.address, sizeBytes: seg.sizeBytes });
      return false;
    });
  }

  setCapacity(capacityBytes: number | null): boolean {
    this.capacityBytes = capacityBytes;
    return true;
  }

  /** One walk serves both levels: the structures are a few lists. */
  isValid(): boolean {
    for (const seg of this.segments) {
      let at = seg.address;
      for (const b of seg.blocks) {
        if (b.address !== at || b.sizeBytes <= 0 || b.sizeBytes % BLOCK_BYTES !== 0) return false;
        at += b.sizeBytes;
      }
      if (at !== seg.address + seg.sizeBytes) return false;
    }
    return true;
  }

  stats(): Record<string, number> {
    return { ...this.counters };
  }

  liveBlocks(): LiveBlock[] {
    return this.segments.flatMap((s) =>
      s.blocks.filter((b) => !b.free).map((b) => ({ handle: b.handle, address: b.address, sizeBytes: b.sizeBytes, requestedBytes: b.requestedBytes, stream: b.stream })),
    );
  }

  reservedRanges(): ReservedRange[] {
    return this.segments.map((s) => ({ address: s.address, sizeBytes: s.sizeBytes, stream: s.stream }));
  }

  drainDeviceEvents(): DeviceEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  dispose(): void {}

  private find(sizeBytes: number, stream: number): { seg: Segment; index: number } | null {
    for (const seg of this.segments) {
      if (seg.stream !== stream && this.bug !== "cross-stream") continue;
      const index = seg.blocks.findIndex((b) => b.free && b.sizeBytes >= sizeBytes);
      if (index >= 0) return { seg, index };
    }
    return null;
  }

  private update(base: string, small: boolean, delta: number): void {
    for (const pool of ["all", small ? "small_pool" : "large_pool"]) {
      const k = `${base}.${pool}`;
      this.counters[`${k}.current`] += delta;
      if (delta > 0) this.counters[`${k}.allocated`] += delta;
      else this.counters[`${k}.freed`] -= delta;
      this.counters[`${k}.peak`] = Math.max(this.counters[`${k}.peak`], this.counters[`${k}.current`]);
    }
  }
}

export function firstFitPolicy(bug?: FirstFitBug): PolicyUnderTest {
  return { name: bug ? `first-fit[${bug}]` : "first-fit", virtualMemory: false, create: () => new FirstFitAllocator(bug) };
}
