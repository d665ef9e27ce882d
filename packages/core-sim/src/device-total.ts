// The device's total memory, read back from where an expandable-segments trace placed its
// reservations. PyTorch reserves 1 1/8 x totalGlobalMem of address space for each expandable
// segment (ExpandableSegment's constructor, c10/cuda/CUDACachingAllocator.cpp), in whole pages
// (20 MiB in the large pool, 2 MiB in the small one), and the driver hands out reservations next to
// each other. So the distance from one reservation's base to the next reservation above it bounds
// the reservation's size, and through it the device's total. The snapshot itself does not record the
// total, and GPUs sold as "80 GB" report different ones (85,017,493,504 bytes on the H100 that
// recorded the project's traces; one public trace's reservations are 4,560 pages of 20 MiB apart,
// which only a total of at most 85,004,561,066 bytes gives). The emulator must reserve no more than
// PyTorch did, or the next reservation's recorded address falls inside its own and the replay can no
// longer place segments where PyTorch placed them.
import { Action, type DeviceTrace } from "@lakebed/traces";

const MiB = 1024 * 1024;
const LARGE_PAGE = 20 * MiB;
const SMALL_PAGE = 2 * MiB;

/** Bytes PyTorch reserves for one expandable segment of `page`-byte pages on a device of `total` bytes. */
export function expandableReservationBytes(total: number, page: number): number {
  return Math.ceil((total + Math.floor(total / 8)) / page) * page;
}

/** The largest device total whose reservations of `page`-byte pages fit in `gap` bytes. */
function largestTotalFitting(gap: number, page: number): number {
  const budget = Math.floor(gap / page) * page;
  let total = Math.floor((budget * 8) / 9);
  while (total + Math.floor(total / 8) > budget) total--;
  return total;
}

/** The largest total, at most `total`, whose reservation for `r`'s pool fits in `gap` bytes. */
function totalFitting(r: Reservation, gap: number, total: number): number {
  const page = r.large ? LARGE_PAGE : SMALL_PAGE;
  return expandableReservationBytes(total, page) > gap ? largestTotalFitting(gap, page) : total;
}

interface Reservation {
  base: number;
  /** the end of the highest page mapped so far: PyTorch maps a reservation from its base upwards, so
   * a later map in the same reservation starts at or below it */
  highWater: number;
  /** false once a map that is not a whole number of 20 MiB pages shows a small-pool segment */
  large: boolean;
}

/**
 * The device total the trace's expandable reservations imply, when it is below `assumed`; else
 * `assumed`. Traces without segment_map events keep `assumed`.
 */
export function inferDeviceTotalBytes(trace: DeviceTrace, assumed: number): number {
  const ev = trace.events;
  const reservations: Reservation[] = [];
  let total = assumed;
  for (let i = 0; i < ev.length; i++) {
    if (ev.action[i] !== Action.SegmentMap) continue;
    const addr = ev.addr[i];
    const end = addr + ev.size[i];
    const small = ev.size[i] % LARGE_PAGE !== 0;
    const own = reservations.find((r) => r.base <= addr && addr <= r.highWater);
    if (own) {
      own.highWater = Math.max(own.highWater, end);
      if (small) own.large = false;
      continue;
    }
    // a fresh reservation: the nearest one below it cannot reach past its base, nor can it reach
    // past the base of the nearest one above
    const fresh: Reservation = { base: addr, highWater: end, large: !small };
    let below: Reservation | undefined;
    let above: Reservation | undefined;
    for (const r of reservations) {
      if (r.base < addr && (!below || r.base > below.base)) below = r;
      if (r.base > addr && (!above || r.base < above.base)) above = r;
    }
    if (below) total = Math.min(total, totalFitting(below, addr - below.base, total));
    if (above) total = Math.min(total, totalFitting(fresh, above.base - addr, total));
    reservations.push(fresh);
  }
  return total;
}
