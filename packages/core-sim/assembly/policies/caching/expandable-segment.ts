// One expandable segment (PyTorch's ExpandableSegment, reference A12): a virtual range reserved
// once, large enough for 1 1/8 of the device's memory, into which physical pages are mapped as
// the pool grows and unmapped on empty_cache or the out-of-memory path. Pages are 2 MiB for the
// small pool and large_segment_size (20 MiB) for the large pool; each page is one physical handle.
//
//   base                                                           base + pages * pageBytes
//   ┌────────┬────────┬────────┬────────┬────────┬─────────── ··· ──┐
//   │ page 0 │ page 1 │ page 2 │ (none) │ page 4 │    unmapped       │
//   │ h=7    │ h=8    │ h=9    │        │ h=12   │                   │
//   └────────┴────────┴────────┴────────┴────────┴─────────── ··· ──┘
//   handles[i] > 0: page i is mapped to that handle; 0: not mapped.
//
// map and unmap work in whole pages: map covers every page the range touches (the range starts on
// a page boundary), unmap only the pages wholly inside the range.

import { Device, NO_ADDRESS, NO_HANDLE } from "../../device/device";
import { BROKEN, BROKEN_EXPANDABLE_UNMAP_PAST_END } from "../broken";

export class ExpandableSegment {
  id: i32;
  stream: i32;
  small: bool;
  base: u64 = NO_ADDRESS;
  pageBytes: u64;
  pages: i32;
  handles: StaticArray<i32>;
  mappedPages: i32 = 0;
  // the range the last unmap() took, for the caller
  unmappedStart: u64 = 0;
  unmappedBytes: u64 = 0;

  constructor(id: i32, stream: i32, small: bool, pageBytes: u64, addressSpaceBytes: u64) {
    this.id = id;
    this.stream = stream;
    this.small = small;
    this.pageBytes = pageBytes;
    const pages = <i32>((addressSpaceBytes + pageBytes - 1) / pageBytes);
    this.pages = pages;
    this.handles = new StaticArray<i32>(pages);
  }

  @inline vaBytes(): u64 {
    return <u64>this.pages * this.pageBytes;
  }

  /** cuMemAddressReserve for the whole range; false when the device has no address space. */
  reserve(device: Device): bool {
    this.base = device.addressReserve(this.vaBytes(), 0);
    return this.base != NO_ADDRESS;
  }

  /** Adopts an existing reservation at `base` (a trace recorded mid-run). */
  adopt(device: Device, base: u64): void {
    this.base = base;
    device.adoptReservation(base, this.vaBytes());
  }

  /**
   * Maps every page [addr, addr + bytes) touches; addr must start a page. Returns the bytes mapped
   * (whole pages), or 0 when the device ran out of physical memory or refused a map or the access
   * (then nothing stays mapped and no handle is left).
   */
  map(device: Device, addr: u64, bytes: u64): u64 {
    assert((addr - this.base) % this.pageBytes == 0, "expandable map must start on a page");
    const begin = <i32>((addr - this.base) / this.pageBytes);
    const end = <i32>((addr + bytes - this.base + this.pageBytes - 1) / this.pageBytes);
    if (begin == end) return 0;
    for (let i = begin; i < end; i++) {
      assert(this.handles[i] == 0, "expandable page already mapped");
      const h = device.memCreate(this.pageBytes);
      if (h == NO_HANDLE) {
        for (let j = begin; j < i; j++) {
          device.memRelease(this.handles[j]);
          this.handles[j] = 0;
        }
        return 0;
      }
      this.handles[i] = h;
    }
    let i = begin;
    while (i < end && device.map(this.pageAddress(i), this.pageBytes, this.handles[i])) i++;
    const mapped = <u64>(end - begin) * this.pageBytes;
    if (i == end && device.setAccess(this.pageAddress(begin), mapped)) {
      this.mappedPages += end - begin;
      return mapped;
    }
    // the device refused a map or the access (as cuMemMap can for want of memory): undo the pages
    if (i > begin) device.unmap(this.pageAddress(begin), <u64>(i - begin) * this.pageBytes);
    for (let j = begin; j < end; j++) {
      device.memRelease(this.handles[j]);
      this.handles[j] = 0;
    }
    return 0;
  }

  /**
   * Unmaps the pages wholly inside [addr, addr + bytes); sets unmappedStart/unmappedBytes (0 bytes
   * when no whole page lies inside).
   */
  unmap(device: Device, addr: u64, bytes: u64): void {
    const begin = <i32>((addr - this.base + this.pageBytes - 1) / this.pageBytes);
    let end = <i32>((addr + bytes - this.base) / this.pageBytes);
    if (BROKEN == BROKEN_EXPANDABLE_UNMAP_PAST_END && end < this.handles.length && this.handles[end] != 0) end++; // broken.ts
    this.unmappedStart = addr;
    this.unmappedBytes = 0;
    if (begin >= end) return;
    for (let i = begin; i < end; i++) {
      device.unmap(this.pageAddress(i), this.pageBytes);
      device.memRelease(this.handles[i]);
      this.handles[i] = 0;
    }
    this.mappedPages -= end - begin;
    this.unmappedStart = this.pageAddress(begin);
    this.unmappedBytes = <u64>(end - begin) * this.pageBytes;
  }

  /** Records pages that were mapped before the replay began. */
  adoptMapped(device: Device, addr: u64, bytes: u64): void {
    const begin = <i32>((addr - this.base) / this.pageBytes);
    const end = <i32>((addr + bytes - this.base) / this.pageBytes);
    for (let i = begin; i < end; i++) {
      this.handles[i] = device.adoptMapping(this.pageAddress(i), this.pageBytes);
    }
    this.mappedPages += end - begin;
  }

  /** cuMemAddressFree, once nothing is mapped. */
  release(device: Device): void {
    assert(this.mappedPages == 0, "releasing an expandable segment with mapped pages");
    device.addressFree(this.base, this.vaBytes());
  }

  @inline pageAddress(i: i32): u64 {
    return this.base + <u64>i * this.pageBytes;
  }

  @inline isPageMapped(i: i32): bool {
    return this.handles[i] != 0;
  }

  @inline pageOf(addr: u64): i32 {
    return <i32>((addr - this.base) / this.pageBytes);
  }
}
