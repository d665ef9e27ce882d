// The host tier as tiering sees it: the pinned arena the device reserved (Device.hostReserve, once
// per replay), cut into 2 MiB slots, one per page on the host. A slot is free or holds exactly one
// page (INV-TIER-6: holder[s] is 1 exactly for the slots in use). Pages leave in runs of adjacent
// pages copied by one call (tiering.ts evictRun), so slots are handed out as runs of adjacent slots:
// the lowest free run long enough, else the lowest free slots that are adjacent (a shorter run; the
// caller takes the rest next). Lowest first keeps the arena's used part compact, and its peak is the
// most pages ever on the host at once.

import { PAGE_BYTES, NO_SLOT } from "./tier-arena";

export class HostSlots {
  /** slots in the arena (0 until reserved) */
  count: i32 = 0;
  /** slots holding a page now, and the most there have been */
  used: i32 = 0;
  peakUsed: i32 = 0;
  /** which slots hold a page: 1 held, 0 free */
  holder: StaticArray<u8> = new StaticArray<u8>(0);
  /** no slot below it is free (a hint that spares the scans the arena's full bottom) */
  private lowestFree: i32 = 0;
  /** the slots the last takeRun handed out, from its answer on */
  runLength: i32 = 0;

  /** Sets the arena up for `bytes` of pinned memory (the device has reserved it). */
  open(bytes: u64): void {
    const n = <i32>(bytes / PAGE_BYTES);
    this.count = n;
    this.holder = new StaticArray<u8>(n);
    this.lowestFree = 0;
  }

  @inline opened(): bool {
    return this.count > 0;
  }

  @inline free(): i32 {
    return this.count - this.used;
  }

  /**
   * Up to `wanted` adjacent free slots: the first of them, their number in runLength (1 to wanted),
   * or NO_SLOT when the arena is full. A run of `wanted` when one is free anywhere.
   */
  takeRun(wanted: i32): i32 {
    assert(wanted > 0, "tiering: a run of no host slots");
    if (this.used == this.count) return NO_SLOT;
    const holder = this.holder;
    let s = this.lowestFree;
    while (unchecked(holder[s]) != 0) s++;
    this.lowestFree = s;
    const lowest = s;
    let lowestLength = 0;
    let start = NO_SLOT;
    // the first free run of `wanted` slots; the length of the lowest run on the way
    while (s < this.count) {
      if (unchecked(holder[s]) != 0) {
        s++;
        continue;
      }
      let e = s;
      while (e < this.count && e - s < wanted && unchecked(holder[e]) == 0) e++;
      if (s == lowest) lowestLength = e - s;
      if (e - s == wanted) {
        start = s;
        break;
      }
      s = e;
    }
    let n = wanted;
    if (start == NO_SLOT) {
      start = lowest;
      n = lowestLength;
    }
    for (let k = start; k < start + n; k++) unchecked((holder[k] = 1));
    this.used += n;
    if (this.used > this.peakUsed) this.peakUsed = this.used;
    this.runLength = n;
    return start;
  }

  give(slot: i32): void {
    assert(unchecked(this.holder[slot]) == 1, "tiering: a host slot given back twice");
    unchecked((this.holder[slot] = 0));
    if (slot < this.lowestFree) this.lowestFree = slot;
    this.used--;
  }

  @inline offset(slot: i32): u64 {
    return <u64>slot * PAGE_BYTES;
  }
}
