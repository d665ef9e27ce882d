// A vms stitched view (GMLake's sBlock, a "fused" block): a virtual range of its own into which
// chunks that pBlocks own are mapped side by side, so that several free pBlocks, wherever they
// lie, serve one large request without new physical memory. The view owns no physical memory:
// its chunks stay their segments' (reserved bytes count them once, in the segments).
//
//   va                                           va + count x 2 MiB
//   ┌──────────┬──────────┬──────────┬──────────┐
//   │ seg 3 #7 │ seg 3 #8 │ seg 1 #0 │ seg 5 #2 │   refs: (segment, chunk) per position
//   └──────────┴──────────┴──────────┴──────────┘
//    [ used prefix (lent pBlocks)   ][ free tail ]   used: chunks claimed while in use
//
// States (GMLake's containers): ACTIVE (handed out) and PENDING (freed, waiting on streams) claim
// the used prefix; REUSABLE (cached, every chunk free: the sPool, best fit by size) and
// FRAGMENTED (cached, some chunk now used through another block) wait in the release list,
// oldest release first, for reuse or garbage collection. A view marked toGC lost its free tail to
// a physical release while in use; it is dropped when freed.

import { Device, NO_ADDRESS } from "../../device/device";
import { NO_BLOCK } from "../../memory/block-table";
import { CHUNK_BYTES, VmsSegment } from "./segment";

export const STITCH_ACTIVE: i32 = 0;
export const STITCH_PENDING: i32 = 1;
export const STITCH_REUSABLE: i32 = 2;
export const STITCH_FRAGMENTED: i32 = 3;
export const NO_STITCH: i32 = -1;

export class Stitch {
  id: i32;
  /** its block record (FLAG_VMS | FLAG_STITCHED): the handle callers hold */
  block: i32 = NO_BLOCK;
  stream: i32;
  va: u64 = NO_ADDRESS;
  /** the reservation's size (the view may have lost its tail since) */
  vaBytes: u64;
  segs: StaticArray<i32>;
  idxs: StaticArray<i32>;
  /** chunks mapped, positions [0, count) */
  count: i32;
  /** the claimed prefix while ACTIVE or PENDING, 0 otherwise */
  used: i32 = 0;
  /** chunks of the view whose owner pBlock is free */
  freeChunks: i32 = 0;
  state: i32 = STITCH_ACTIVE;
  toGC: bool = false;
  /** when it was last freed (the per-stream release event id in GMLake; one clock here) */
  releaseSeq: i64 = 0;
  /** release list links (stitch ids): older and newer cached views */
  older: i32 = NO_STITCH;
  newer: i32 = NO_STITCH;

  constructor(id: i32, stream: i32, chunks: i32) {
    this.id = id;
    this.stream = stream;
    this.count = chunks;
    this.vaBytes = <u64>chunks * CHUNK_BYTES;
    this.segs = new StaticArray<i32>(chunks);
    this.idxs = new StaticArray<i32>(chunks);
  }

  @inline bytes(): u64 {
    return <u64>this.count * CHUNK_BYTES;
  }

  @inline cached(): bool {
    return this.state == STITCH_REUSABLE || this.state == STITCH_FRAGMENTED;
  }

  /**
   * GMLake's stitch sequence: one cuMemAddressReserve, cuMemMap of each chunk's handle in order,
   * then one cuMemSetAccess over the range (GMLake: one per chunk). False when there is no address
   * space or the device refuses a map or the access; then nothing stays mapped or reserved.
   */
  map(device: Device, segments: Array<VmsSegment | null>): bool {
    this.va = device.addressReserve(this.vaBytes, 0);
    if (this.va == NO_ADDRESS) return false;
    let mapped = 0;
    while (mapped < this.count) {
      const seg = changetype<VmsSegment>(unchecked(segments[unchecked(this.segs[mapped])]));
      if (!device.map(this.va + <u64>mapped * CHUNK_BYTES, CHUNK_BYTES, unchecked(seg.handles[unchecked(this.idxs[mapped])]))) break;
      mapped++;
    }
    if (mapped == this.count && device.setAccess(this.va, this.vaBytes)) return true;
    if (mapped > 0) device.unmap(this.va, <u64>mapped * CHUNK_BYTES);
    device.addressFree(this.va, this.vaBytes);
    this.va = NO_ADDRESS;
    return false;
  }

  /** Unmaps positions [from, count) with one call (the reservation stays). */
  unmapFrom(device: Device, from: i32): void {
    if (from < this.count) device.unmap(this.va + <u64>from * CHUNK_BYTES, <u64>(this.count - from) * CHUNK_BYTES);
    this.count = from;
  }

  /** Drops the view's mappings and its reservation. */
  unmapAll(device: Device): void {
    this.unmapFrom(device, 0);
    device.addressFree(this.va, this.vaBytes);
  }
}
