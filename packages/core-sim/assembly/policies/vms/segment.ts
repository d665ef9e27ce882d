// A vms physical segment: what GMLake makes when it needs new memory (realloc_block). N chunks of
// 2 MiB, each its own physical handle (cuMemCreate), mapped in order into one fresh virtual range.
// The pBlocks ("primitive blocks") of the segment tile that range at chunk granularity, linked
// prev/next as PyTorch's split blocks are; each chunk remembers the pBlock that holds it and the
// stitched views (stitched-view.ts) that map it too.
//
//   base                                                            base + chunks x 2 MiB
//   ┌─────────┬─────────┬─────────┬─────────┬─────────┬─────────┐
//   │ chunk 0 │ chunk 1 │ chunk 2 │ chunk 3 │ chunk 4 │ chunk 5 │   handles[i]: its cuMemCreate handle
//   │ h=4     │ h=5     │ h=6     │ h=7     │ h=8     │ h=9     │   owner[i]:   the pBlock holding it
//   └─────────┴─────────┴─────────┴─────────┴─────────┴─────────┘   views[i]:   stitched views mapping it
//    [ pBlock A (allocated) ][ pBlock B (free)  ][ pBlock C (lent)]
//
// Invariants (numbered in vms.ts): the owners tile the segment, each owner's range covers
// exactly the chunks that name it; a chunk is "used" exactly when its owner is allocated, pending
// or lent, and "free" when its owner is in the free pool.

import { Device, NO_ADDRESS, NO_HANDLE, GRANULARITY_BYTES } from "../../device/device";
import { NO_BLOCK } from "../../memory/block-table";

export const CHUNK_BYTES: u64 = GRANULARITY_BYTES;

export class VmsSegment {
  id: i32;
  stream: i32;
  base: u64 = NO_ADDRESS;
  chunks: i32;
  handles: StaticArray<i32>;
  owner: StaticArray<i32>;
  /** per chunk: ids of the stitched views mapping it (null: none) */
  views: StaticArray<Array<i32> | null>;
  /** the pBlock at the segment's base */
  head: i32 = NO_BLOCK;
  // scratch stamps for the invariant walk (valid.ts), kept so that the walk allocates nothing
  seen: StaticArray<i32>;
  claimed: StaticArray<i32>;

  constructor(id: i32, stream: i32, chunks: i32) {
    this.id = id;
    this.stream = stream;
    this.chunks = chunks;
    this.handles = new StaticArray<i32>(chunks);
    this.owner = new StaticArray<i32>(chunks);
    this.views = new StaticArray<Array<i32> | null>(chunks);
    this.seen = new StaticArray<i32>(chunks);
    this.claimed = new StaticArray<i32>(chunks);
  }

  @inline bytes(): u64 {
    return <u64>this.chunks * CHUNK_BYTES;
  }

  @inline chunkOf(addr: u64): i32 {
    return <i32>((addr - this.base) / CHUNK_BYTES);
  }

  @inline chunkAddress(i: i32): u64 {
    return this.base + <u64>i * CHUNK_BYTES;
  }

  /** Records `block` as the holder of chunks [from, to). */
  setOwner(from: i32, to: i32, block: i32): void {
    for (let i = from; i < to; i++) unchecked((this.owner[i] = block));
  }

  addView(chunk: i32, stitch: i32): void {
    let list = unchecked(this.views[chunk]);
    if (list == null) {
      list = new Array<i32>();
      unchecked((this.views[chunk] = list));
    }
    list.push(stitch);
  }

  removeView(chunk: i32, stitch: i32): void {
    const list = changetype<Array<i32>>(unchecked(this.views[chunk]));
    const at = list.indexOf(stitch);
    assert(at >= 0, "vms: a stitched view missing from its chunk's view list");
    list[at] = list[list.length - 1];
    list.pop();
  }

  @inline viewCount(chunk: i32): i32 {
    const list = unchecked(this.views[chunk]);
    return list == null ? 0 : list.length;
  }

  /**
   * GMLake's new pBlock sequence: cuMemCreate per chunk, cuMemAddressReserve, cuMemMap per chunk,
   * then one cuMemSetAccess over the range (GMLake sets access per chunk; one call per range is
   * what a native backend should do, DESIGN.md's figures). False, with everything it made undone,
   * when the device runs out of memory or refuses a map or the access.
   */
  create(device: Device): bool {
    for (let i = 0; i < this.chunks; i++) {
      const h = device.memCreate(CHUNK_BYTES);
      if (h == NO_HANDLE) {
        for (let j = 0; j < i; j++) device.memRelease(unchecked(this.handles[j]));
        return false;
      }
      unchecked((this.handles[i] = h));
    }
    this.base = device.addressReserve(this.bytes(), 0);
    if (this.base == NO_ADDRESS) {
      for (let j = 0; j < this.chunks; j++) device.memRelease(unchecked(this.handles[j]));
      return false;
    }
    let mapped = 0;
    while (mapped < this.chunks && device.map(this.chunkAddress(mapped), CHUNK_BYTES, unchecked(this.handles[mapped]))) mapped++;
    if (mapped == this.chunks && device.setAccess(this.base, this.bytes())) return true;
    // the device refused a map or the access: undo everything this call did
    if (mapped > 0) device.unmap(this.base, <u64>mapped * CHUNK_BYTES);
    device.addressFree(this.base, this.bytes());
    for (let j = 0; j < this.chunks; j++) device.memRelease(unchecked(this.handles[j]));
    return false;
  }

  /** Gives the segment back: one unmap of the whole range, free the range, release each chunk. */
  release(device: Device): void {
    device.unmap(this.base, this.bytes());
    device.addressFree(this.base, this.bytes());
    for (let i = 0; i < this.chunks; i++) device.memRelease(unchecked(this.handles[i]));
  }
}
