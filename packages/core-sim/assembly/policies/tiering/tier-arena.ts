// One tiering arena: the virtual range reserved once per stream, into which blocks are packed at
// 512-byte granularity, and its page table. Pages are 2 MiB, the granularity: a page is the unit
// that moves between the device and the host tier, and its virtual address never changes, so a
// block's address stays valid wherever its bytes are.
//
//   base                                                                base + pages * 2 MiB
//   ┌───────────┬───────────┬───────────┬───────────┬───────────┬──── ··· ─┐
//   │ page 0    │ page 1    │ page 2    │ page 3    │ page 4    │  never   │
//   │ h=7 t=2   │ h=0 t=1   │ h=0 t=0   │ h=9 t=1   │ h=3 t=1   │  touched │
//   │ slot -1   │ slot 4    │ slot -1   │ slot -1   │ slot -1   │          │
//   └───────────┴───────────┴───────────┴───────────┴───────────┴──── ··· ─┘
//    [blk A ][ blk B  ]      unmapped    [ blk C              ]
//    resident  on the host   empty        resident
//
// A page is in one of four states (INV-TIER-4):
//   empty     touches == 0, handles == 0, hostSlot == -1: no live block, no memory anywhere
//   resident  touches  > 0, handles  > 0, hostSlot == -1: a chunk mapped with access
//   on host   touches  > 0, handles == 0, hostSlot >= 0: its bytes in the host arena at
//             hostSlot x 2 MiB, the range unmapped (a device access there would fault)
//   dropped   touches  > 0, handles == 0, hostSlot == DROPPED: a serverless shrink discarded its
//             bytes (every block on it tagged discardable); it comes back mapped, its content not
// A page whose last block goes is unmapped at once and its chunk released, so no page is mapped
// without a block and the device holds exactly the mapped pages.

import { Device, NO_ADDRESS, GRANULARITY_BYTES } from "../../device/device";
import { BlockChain } from "../../memory/block-chain";

export const PAGE_BYTES: u64 = GRANULARITY_BYTES;
export const NO_SLOT: i32 = -1;
/** hostSlots' value for a page a shrink dropped (its blocks discardable): touched, nowhere */
export const DROPPED: i32 = -2;

/** pages the tables of a new arena hold (ensurePages grows them) */
const INITIAL_PAGE_CAPACITY: i32 = 64;

function grownI32(from: StaticArray<i32>, length: i32, fill: i32): StaticArray<i32> {
  const to = new StaticArray<i32>(length);
  memory.copy(changetype<usize>(to), changetype<usize>(from), <usize>from.length << 2);
  for (let i = from.length; i < length; i++) unchecked((to[i] = fill));
  return to;
}

function grownF64(from: StaticArray<f64>, length: i32): StaticArray<f64> {
  const to = new StaticArray<f64>(length);
  memory.copy(changetype<usize>(to), changetype<usize>(from), <usize>from.length << 3);
  return to;
}

export class TierArena extends BlockChain {
  id: i32;
  stream: i32;
  base: u64 = NO_ADDRESS;
  /** pages in the reservation */
  pages: i32;
  /** pages the tables hold, grown by doubling as blocks reach further; pages past it are empty */
  capacity: i32;
  /** the chunk mapped at each page, 0: none */
  handles: StaticArray<i32>;
  /** allocated or pending blocks touching each page */
  touches: StaticArray<i32>;
  /** the host-arena slot holding each page's bytes while on the host, NO_SLOT: none */
  hostSlots: StaticArray<i32>;
  /** the last position at which a block on the page was allocated or used (the stall model's tA) */
  lastTouch: StaticArray<i32>;
  /** the use group (TieringPolicy.stamp) that needs the page now: never a victim during it */
  pinned: StaticArray<i32>;
  /** when the page's copy out ended, on the transfer clock (µs) */
  outEnd: StaticArray<f64>;
  /** 1 while the page is off the device because a shrink moved it (its refill is the shrink's) */
  shrunk: StaticArray<u8>;
  /** one past the highest page ever touched (walks go no further) */
  highPage: i32 = 0;

  constructor(id: i32, stream: i32, addressSpaceBytes: u64) {
    super();
    this.id = id;
    this.stream = stream;
    const pages = <i32>((addressSpaceBytes + PAGE_BYTES - 1) / PAGE_BYTES);
    this.pages = pages;
    const capacity = min(pages, INITIAL_PAGE_CAPACITY);
    this.capacity = capacity;
    this.handles = new StaticArray<i32>(capacity);
    this.touches = new StaticArray<i32>(capacity);
    this.hostSlots = grownI32(new StaticArray<i32>(0), capacity, NO_SLOT);
    this.lastTouch = new StaticArray<i32>(capacity);
    this.pinned = new StaticArray<i32>(capacity);
    this.outEnd = new StaticArray<f64>(capacity);
    this.shrunk = new StaticArray<u8>(capacity);
  }

  /** Grows the page tables to hold pages [0, end) (end <= pages). */
  ensurePages(end: i32): void {
    if (end <= this.capacity) return;
    const capacity = min(this.pages, max(end, this.capacity << 1));
    this.handles = grownI32(this.handles, capacity, 0);
    this.touches = grownI32(this.touches, capacity, 0);
    this.hostSlots = grownI32(this.hostSlots, capacity, NO_SLOT);
    this.lastTouch = grownI32(this.lastTouch, capacity, 0);
    this.pinned = grownI32(this.pinned, capacity, 0);
    this.outEnd = grownF64(this.outEnd, capacity);
    const shrunk = new StaticArray<u8>(capacity);
    memory.copy(changetype<usize>(shrunk), changetype<usize>(this.shrunk), <usize>this.shrunk.length);
    this.shrunk = shrunk;
    this.capacity = capacity;
  }

  @inline vaBytes(): u64 {
    return <u64>this.pages * PAGE_BYTES;
  }

  /** cuMemAddressReserve for the whole arena; false when the device has no address space. */
  reserve(device: Device): bool {
    this.base = device.addressReserve(this.vaBytes(), 0);
    return this.base != NO_ADDRESS;
  }

  @inline pageOf(addr: u64): i32 {
    return <i32>((addr - this.base) / PAGE_BYTES);
  }

  @inline pageAddress(page: i32): u64 {
    return this.base + <u64>page * PAGE_BYTES;
  }

  /** One past the last page that [addr, addr + bytes) touches (bytes > 0). */
  @inline endPage(addr: u64, bytes: u64): i32 {
    return this.pageOf(addr + bytes - 1) + 1;
  }

  @inline handle(page: i32): i32 { return page < this.capacity ? unchecked(this.handles[page]) : 0; }
  @inline touch(page: i32): i32 { return page < this.capacity ? unchecked(this.touches[page]) : 0; }
  @inline hostSlot(page: i32): i32 { return page < this.capacity ? unchecked(this.hostSlots[page]) : NO_SLOT; }
  /** touched and its bytes on the device */
  @inline resident(page: i32): bool { return this.handle(page) != 0; }
  /** touched and its bytes in the host arena */
  @inline onHost(page: i32): bool { return this.hostSlot(page) >= 0; }
  /** touched and off the device: on the host, or dropped by a shrink */
  @inline away(page: i32): bool { return this.hostSlot(page) != NO_SLOT; }
}
