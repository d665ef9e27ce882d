// One lakebed arena: a virtual range reserved once per (stream, small/large), into which blocks
// are packed at 512-byte granularity, and the page table that backs it with physical chunks of
// its page size (2 MiB for the small pool, lakebed_large_page_mb for the large one). A page is
// backed while any live block touches one of its bytes; a page nobody touches ("idle") keeps its
// mapping, and the chunk it maps is free for whichever page needs one (chunk-pool.ts).
//
//   base                                                           base + pages * pageBytes
//   ┌──────────┬──────────┬──────────┬──────────┬──────────┬──────── ··· ─┐
//   │ page 0   │ page 1   │ page 2   │ page 3   │ page 4   │  never      │
//   │ h=7 t=2  │ h=8 t=1  │ h=3 t=0  │ h=0 t=0  │ h=9 t=1  │  touched    │
//   └──────────┴──────────┴──────────┴──────────┴──────────┴──────── ··· ─┘
//    [blk A ][ blk B      ]  idle       unmapped  [ blk C ]
//   slots[i] > 0: page i maps chunk slots[i] - 1 of the arena's pool (chunk-pool.ts); touches[i]:
//   live blocks touching page i. A touched page owns the chunk it maps; an untouched page may map
//   a chunk that is free (it is then backed again with no driver call when touched) or that
//   another page owns (an alias, unmapped before the page is touched again). aliasPrev/aliasNext
//   link the pages of this arena that map one chunk. releasedAt[i], idleGap[i]: when page i last
//   went from touched to untouched, and how long it stayed untouched before its next touch: what
//   reuse-forecast.ts forecasts its next touch from.

import { Device, NO_ADDRESS, GRANULARITY_BYTES } from "../../device/device";
import { BlockChain } from "../../memory/block-chain";

/** the page (and chunk) size of small-pool arenas, and the least a page may be */
export const SMALL_PAGE_BYTES: u64 = GRANULARITY_BYTES;
/** no page (the ends of an alias list) */
export const NO_PAGE: i32 = -1;
/** no chunk mapped at a page (chunkAt) */
export const UNMAPPED: i32 = -1;

/** pages the tables of a new arena hold (ensurePages grows them) */
const INITIAL_PAGE_CAPACITY: i32 = 64;

function grownI32(from: StaticArray<i32>, length: i32): StaticArray<i32> {
  const to = new StaticArray<i32>(length);
  memory.copy(changetype<usize>(to), changetype<usize>(from), <usize>from.length << 2);
  return to;
}

function grownI64(from: StaticArray<i64>, length: i32): StaticArray<i64> {
  const to = new StaticArray<i64>(length);
  memory.copy(changetype<usize>(to), changetype<usize>(from), <usize>from.length << 3);
  return to;
}

export class Arena extends BlockChain {
  id: i32;
  stream: i32;
  small: bool;
  base: u64 = NO_ADDRESS;
  /** bytes per page, a multiple of the granularity: every chunk mapped here is exactly this size */
  pageBytes: u64;
  /** the policy's chunk pool whose chunks back this arena (LakebedPolicy.pools) */
  poolId: i32;
  /** pages in the reservation */
  pages: i32;
  /**
   * Pages the tables below hold, grown by doubling up to `pages` as blocks reach further (pages at
   * or past it are unmapped and untouched). A reservation spans 1 1/8 x the device, 46,080 pages of
   * an H100 and more in the property harness's device, while a job touches a small part of it:
   * tables for the whole range made every new allocator allocate megabytes it never used.
   */
  capacity: i32;
  /** per page: the pool slot of the chunk mapped there, plus one (0: unmapped) */
  slots: StaticArray<i32>;
  touches: StaticArray<i32>;
  /** per page that maps a chunk: the previous and next page mapping the same chunk (NO_PAGE at the ends) */
  aliasPrev: StaticArray<i32>;
  aliasNext: StaticArray<i32>;
  /**
   * The policy's clock (LakebedPolicy.clock, its malloc count) when the last block touching each
   * page let go of it; 0: never untouched. Never later than the clock, and above 0 on every mapped
   * page nobody touches (a page is mapped when touched and untouched only once let go).
   */
  releasedAt: StaticArray<i64>;
  /**
   * Mallocs each page stayed untouched before it was touched again, smoothed over the past times;
   * 0: never touched again after being let go. Never negative, and below the clock.
   */
  idleGap: StaticArray<i64>;
  /** pages with a chunk mapped, touched or not (aliases counted each) */
  mappedPages: i32 = 0;
  /** one past the highest page ever mapped (layout and emptyCache walk no further) */
  highPage: i32 = 0;

  constructor(id: i32, stream: i32, small: bool, addressSpaceBytes: u64, pageBytes: u64, poolId: i32) {
    super();
    this.id = id;
    this.stream = stream;
    this.small = small;
    this.pageBytes = pageBytes;
    this.poolId = poolId;
    const pages = <i32>((addressSpaceBytes + pageBytes - 1) / pageBytes);
    this.pages = pages;
    const capacity = min(pages, INITIAL_PAGE_CAPACITY);
    this.capacity = capacity;
    this.slots = new StaticArray<i32>(capacity);
    this.touches = new StaticArray<i32>(capacity);
    this.aliasPrev = new StaticArray<i32>(capacity);
    this.aliasNext = new StaticArray<i32>(capacity);
    this.releasedAt = new StaticArray<i64>(capacity);
    this.idleGap = new StaticArray<i64>(capacity);
  }

  /** Grows the page tables to hold pages [0, end) (end <= pages). */
  ensurePages(end: i32): void {
    if (end <= this.capacity) return;
    const capacity = min(this.pages, max(end, this.capacity << 1));
    this.slots = grownI32(this.slots, capacity);
    this.touches = grownI32(this.touches, capacity);
    this.aliasPrev = grownI32(this.aliasPrev, capacity);
    this.aliasNext = grownI32(this.aliasNext, capacity);
    this.releasedAt = grownI64(this.releasedAt, capacity);
    this.idleGap = grownI64(this.idleGap, capacity);
    this.capacity = capacity;
  }

  @inline vaBytes(): u64 {
    return <u64>this.pages * this.pageBytes;
  }

  /** cuMemAddressReserve for the whole arena; false when the device has no address space. */
  reserve(device: Device): bool {
    this.base = device.addressReserve(this.vaBytes(), 0);
    return this.base != NO_ADDRESS;
  }

  @inline pageOf(addr: u64): i32 {
    return <i32>((addr - this.base) / this.pageBytes);
  }

  @inline pageAddress(page: i32): u64 {
    return this.base + <u64>page * this.pageBytes;
  }

  /** One past the last page that [addr, addr + bytes) touches (bytes > 0). */
  @inline endPage(addr: u64, bytes: u64): i32 {
    return this.pageOf(addr + bytes - 1) + 1;
  }

  /** The pool slot of the chunk mapped at `page` (UNMAPPED: none); any page of the reservation. */
  @inline chunkAt(page: i32): i32 { return page < this.capacity ? unchecked(this.slots[page]) - 1 : UNMAPPED; }
  /** Live blocks touching `page`; any page of the reservation. */
  @inline touch(page: i32): i32 { return page < this.capacity ? unchecked(this.touches[page]) : 0; }
}
