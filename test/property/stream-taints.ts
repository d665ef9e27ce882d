import type { DeviceEvent, PhysicalMapping } from "./allocator-under-test.js";
import { fail } from "./guarantees.js";

/**
 * G-STREAM's bookkeeping: memory a stream freed stays "tainted" with that stream until it goes back
 * to the device (a release or an unmap, which on a GPU waits for the stream's queued work); a block
 * handed to another stream must not hold tainted memory.
 *
 * Where memory is depends on the policy. For a policy that hands out device allocations as they are
 * (caching), memory is its virtual addresses. For a virtual-memory policy it is physical: a chunk and
 * a range of offsets in it, because the same chunk may be mapped at several addresses (a vms
 * stitched block) or moved to another address (lakebed), and an address range given back may be
 * reserved again over other chunks. There, a freed block taints the pieces of the chunks mapped
 * under it, and an unmap or release of an address range clears the chunks that were mapped there.
 */
export interface Piece {
  /** the chunk (virtual-memory policies), or 0: the range is in virtual addresses */
  space: number;
  start: number;
  end: number;
}

interface Taint extends Piece {
  stream: number;
}

const hex = (n: number) => `0x${n.toString(16)}`;

export class StreamTaints {
  /** by space (chunk, or 0 for virtual addresses) */
  private readonly taints = new Map<number, Taint[]>();
  /** the mappings before the current step (physical mode): where each chunk was */
  private mappings: readonly PhysicalMapping[] = [];

  constructor(readonly physical: boolean) {}

  /** the pieces of memory under [address, address + sizeBytes) */
  piecesOf(address: number, sizeBytes: number, mappings: readonly PhysicalMapping[] = this.mappings): Piece[] {
    const end = address + sizeBytes;
    if (!this.physical) return [{ space: 0, start: address, end }];
    const out: Piece[] = [];
    for (const m of mappings) {
      const from = Math.max(m.address, address);
      const to = Math.min(m.address + m.sizeBytes, end);
      if (to > from) out.push({ space: m.chunk, start: m.chunkOffset + from - m.address, end: m.chunkOffset + to - m.address });
    }
    return out;
  }

  /** a block of `stream` at [address, +sizeBytes) was freed (call before the free reaches the policy) */
  freed(address: number, sizeBytes: number, stream: number): void {
    for (const p of this.piecesOf(address, sizeBytes)) {
      const list = this.taints.get(p.space);
      if (list) list.push({ ...p, stream });
      else this.taints.set(p.space, [{ ...p, stream }]);
    }
  }

  /** device events of the step: the memory of every release and unmap went back to the device */
  released(events: readonly DeviceEvent[]): void {
    for (const e of events) {
      if (e.action !== "segment_free" && e.action !== "segment_unmap") continue;
      if (!this.physical) this.clear({ space: 0, start: e.address, end: e.address + e.sizeBytes });
      else for (const p of this.piecesOf(e.address, e.sizeBytes)) this.taints.delete(p.space);
    }
  }

  /** G-STREAM for a block just handed to `stream`; then its memory is that stream's */
  handedOut(address: number, sizeBytes: number, stream: number, mappings: readonly PhysicalMapping[]): void {
    for (const p of this.piecesOf(address, sizeBytes, mappings)) {
      for (const t of this.taints.get(p.space) ?? []) {
        if (t.start < p.end && t.end > p.start && t.stream !== stream) {
          const where = this.physical ? `bytes [${t.start}, ${t.end}) of chunk ${t.space}` : `memory at ${hex(t.start)}`;
          fail("G-STREAM", `block at ${hex(address)} for stream ${stream} reuses ${where} that stream ${t.stream} freed, with no release in between`);
        }
      }
      this.clear(p);
    }
  }

  /** the mappings after the step, for the next one */
  remember(mappings: readonly PhysicalMapping[]): void {
    this.mappings = mappings;
  }

  private clear(p: Piece): void {
    const list = this.taints.get(p.space);
    if (!list) return;
    const out: Taint[] = [];
    for (const t of list) {
      if (t.end <= p.start || t.start >= p.end) out.push(t);
      else {
        if (t.start < p.start) out.push({ ...t, end: p.start });
        if (t.end > p.end) out.push({ ...t, start: p.end });
      }
    }
    if (out.length > 0) this.taints.set(p.space, out);
    else this.taints.delete(p.space);
  }
}
