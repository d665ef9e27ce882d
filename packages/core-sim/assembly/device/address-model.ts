// Where a simulated driver puts new memory when the trace cannot say (what-if replays with other
// settings or policies, or traceAddresses off). Placement matters: best fit breaks ties between
// equal-size free blocks by the lowest address, so the order of segment bases changes which block
// PyTorch reuses and, over a run, its peaks.
//
// What the recorded traces show (PyTorch 2.11, CUDA 13, H100; ../shared/traces):
// - cudaMalloc bases are 2 MiB-aligned and, over a run, mostly descending from a high base near
//   0x7fde_0000_0000 (gpt2_ckpt.def starts at 0x7fdde4000000 and ends near 0x7fd740000000;
//   two_streams.def at 0x7f1f08000000 and down). Small ranges are sometimes carved upward from
//   the space left above an earlier one (the driver sub-allocates from larger chunks), and freed
//   ranges are reused.
// - cuMemAddressReserve (expandable segments) bases ascend from 0x302000000: the large-pool
//   reservation first, then the small-pool one right after its end, rounded up to 32 MiB
//   (0x302000000 + 95,651,102,720 bytes -> 0x1948000000 in llama_lora.exp and mlp_offload.exp).
//
// The model: cudaMalloc takes the highest free gap below MALLOC_TOP_ADDRESS that fits and places
// the range at the top of that gap, 2 MiB-aligned (so fresh ranges descend and freed ranges high
// up are reused first); a reservation takes the lowest free gap at or above RESERVE_BASE_ADDRESS,
// aligned to 32 MiB. The driver's sub-allocation inside chunks is not modelled.

import { RangeList } from "./range-list";
import { NO_ADDRESS } from "./device";

export const MALLOC_TOP_ADDRESS: u64 = 0x7fde00000000;
export const MALLOC_FLOOR_ADDRESS: u64 = 0x10000000000;
export const MALLOC_ALIGN_BYTES: u64 = 2 << 20;
export const RESERVE_BASE_ADDRESS: u64 = 0x302000000;
export const RESERVE_ALIGN_BYTES: u64 = 32 << 20;

@inline function alignDown(x: u64, a: u64): u64 { return x - (x % a); }
@inline function alignUp(x: u64, a: u64): u64 { return ((x + a - 1) / a) * a; }

/** The address a cudaMalloc of `bytes` gets, avoiding every range in both lists. */
export function modelMallocAddress(bytes: u64, mallocs: RangeList, reservations: RangeList): u64 {
  let top = MALLOC_TOP_ADDRESS;
  let i = mallocs.lowerIndex(MALLOC_TOP_ADDRESS) - 1; // the highest range starting below the top
  while (true) {
    const floor = i >= 0 ? mallocs.start(i) + mallocs.size(i) : MALLOC_FLOOR_ADDRESS;
    if (top >= bytes && top - bytes >= floor) {
      const candidate = alignDown(top - bytes, MALLOC_ALIGN_BYTES);
      if (candidate >= floor && !reservations.overlaps(candidate, bytes)) return candidate;
    }
    if (i < 0) return NO_ADDRESS;
    top = mallocs.start(i);
    i--;
  }
  return NO_ADDRESS;
}

/** The base a reservation of `bytes` gets, avoiding every range in both lists. */
export function modelReserveAddress(bytes: u64, reservations: RangeList, mallocs: RangeList): u64 {
  let base = alignUp(RESERVE_BASE_ADDRESS, RESERVE_ALIGN_BYTES);
  for (let i = 0; i < reservations.count; i++) {
    const end = reservations.start(i) + reservations.size(i);
    if (end <= base) continue;
    if (reservations.start(i) >= base + bytes && !mallocs.overlaps(base, bytes)) return base;
    base = alignUp(end, RESERVE_ALIGN_BYTES);
  }
  while (mallocs.overlaps(base, bytes)) {
    const j = mallocs.lowerIndex(base + bytes) - 1;
    base = alignUp(mallocs.start(j) + mallocs.size(j), RESERVE_ALIGN_BYTES);
  }
  return base;
}
