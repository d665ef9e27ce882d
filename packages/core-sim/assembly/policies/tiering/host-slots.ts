// The host tier as tiering sees it: the pinned arena the device reserved (Device.hostReserve, once
// per replay), cut into 2 MiB slots, one per page on the host. A slot is free or holds exactly one
// page (INV-TIER-6); slots are handed out lowest first from a free stack, so the arena's used part
// stays compact and its peak is the most pages ever on the host at once.

import { PAGE_BYTES, NO_SLOT } from "./tier-arena";

export class HostSlots {
  /** slots in the arena (0 until reserved) */
  count: i32 = 0;
  /** slots holding a page now, and the most there have been */
  used: i32 = 0;
  peakUsed: i32 = 0;
  /** free slots, the next one to hand out last */
  private free: StaticArray<i32> = new StaticArray<i32>(0);
  private freeCount: i32 = 0;
  /** which slots hold a page (for the whole walk: no slot held twice) */
  holder: StaticArray<u8> = new StaticArray<u8>(0);

  /** Sets the arena up for `bytes` of pinned memory (the device has reserved it). */
  open(bytes: u64): void {
    const n = <i32>(bytes / PAGE_BYTES);
    this.count = n;
    this.free = new StaticArray<i32>(n);
    this.holder = new StaticArray<u8>(n);
    for (let i = 0; i < n; i++) unchecked((this.free[i] = n - 1 - i));
    this.freeCount = n;
  }

  @inline opened(): bool {
    return this.count > 0;
  }

  /** A free slot, or NO_SLOT when the arena is full. */
  take(): i32 {
    if (this.freeCount == 0) return NO_SLOT;
    const s = unchecked(this.free[--this.freeCount]);
    unchecked((this.holder[s] = 1));
    this.used++;
    if (this.used > this.peakUsed) this.peakUsed = this.used;
    return s;
  }

  give(slot: i32): void {
    assert(unchecked(this.holder[slot]) == 1, "tiering: a host slot given back twice");
    unchecked((this.holder[slot] = 0));
    unchecked((this.free[this.freeCount++] = slot));
    this.used--;
  }

  @inline offset(slot: i32): u64 {
    return <u64>slot * PAGE_BYTES;
  }
}
