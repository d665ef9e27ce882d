// The statistics of torch.cuda.memory_stats(), kept the way PyTorch keeps them (DeviceStats):
// each array stat has an aggregate, a small-pool and a large-pool entry, and each entry has
// current, peak (the highest current), allocated (the sum of increases) and freed (the sum of
// decreases). Declared once, here, as one flat table of i64 values; the TypeScript side names the
// entries in the same order (src/stats-table.ts) and a test checks that the two agree in length.
//
// Flat layout, index = (kind * 3 + pool) * 4 + metric for the nine array stats (0 .. 107):
//   kinds   allocation, segment, active, inactive_split, allocated_bytes, reserved_bytes,
//           active_bytes, inactive_split_bytes, requested_bytes
//   pools   all, small_pool, large_pool
//   metrics current, peak, allocated, freed
// then the two scalar Stats (108 .. 115): oversize_allocations, oversize_segments
// (current, peak, allocated, freed each), then the counters (116 .. 121): num_alloc_retries,
// num_ooms, num_sync_all_streams, num_device_alloc, num_device_free, max_split_size.

export const STAT_ALLOCATION: i32 = 0;
export const STAT_SEGMENT: i32 = 1;
export const STAT_ACTIVE: i32 = 2;
export const STAT_INACTIVE_SPLIT: i32 = 3;
export const STAT_ALLOCATED_BYTES: i32 = 4;
export const STAT_RESERVED_BYTES: i32 = 5;
export const STAT_ACTIVE_BYTES: i32 = 6;
export const STAT_INACTIVE_SPLIT_BYTES: i32 = 7;
export const STAT_REQUESTED_BYTES: i32 = 8;
export const ARRAY_STAT_KINDS: i32 = 9;

export const POOL_ALL: i32 = 0;
export const POOL_SMALL: i32 = 1;
export const POOL_LARGE: i32 = 2;

export const METRIC_CURRENT: i32 = 0;
export const METRIC_PEAK: i32 = 1;
export const METRIC_ALLOCATED: i32 = 2;
export const METRIC_FREED: i32 = 3;

export const SCALAR_OVERSIZE_ALLOCATIONS: i32 = 108;
export const SCALAR_OVERSIZE_SEGMENTS: i32 = 112;
export const NUM_ALLOC_RETRIES: i32 = 116;
export const NUM_OOMS: i32 = 117;
export const NUM_SYNC_ALL_STREAMS: i32 = 118;
export const NUM_DEVICE_ALLOC: i32 = 119;
export const NUM_DEVICE_FREE: i32 = 120;
export const MAX_SPLIT_SIZE: i32 = 121;
export const STAT_COUNT: i32 = 122;

@inline export function statIndex(kind: i32, pool: i32, metric: i32): i32 {
  return (kind * 3 + pool) * 4 + metric;
}

export class Stats {
  values: StaticArray<i64> = new StaticArray<i64>(STAT_COUNT);

  @inline get(index: i32): i64 {
    return unchecked(this.values[index]);
  }

  @inline set(index: i32, v: i64): void {
    unchecked((this.values[index] = v));
  }

  @inline current(kind: i32, pool: i32): i64 {
    return this.get(statIndex(kind, pool, METRIC_CURRENT));
  }

  @inline peak(kind: i32, pool: i32): i64 {
    return this.get(statIndex(kind, pool, METRIC_PEAK));
  }

  /** PyTorch's increase_stat on the aggregate and on the block's pool. */
  increase(kind: i32, small: bool, amount: u64): void {
    this.increaseAt(statIndex(kind, POOL_ALL, 0), amount);
    this.increaseAt(statIndex(kind, small ? POOL_SMALL : POOL_LARGE, 0), amount);
  }

  /** PyTorch's decrease_stat on the aggregate and on the block's pool. */
  decrease(kind: i32, small: bool, amount: u64): void {
    this.decreaseAt(statIndex(kind, POOL_ALL, 0), amount);
    this.decreaseAt(statIndex(kind, small ? POOL_SMALL : POOL_LARGE, 0), amount);
  }

  /** A scalar Stat (oversize_allocations, oversize_segments) at its base index. */
  increaseAt(base: i32, amount: u64): void {
    const current = this.get(base + METRIC_CURRENT) + <i64>amount;
    this.set(base + METRIC_CURRENT, current);
    if (current > this.get(base + METRIC_PEAK)) this.set(base + METRIC_PEAK, current);
    this.set(base + METRIC_ALLOCATED, this.get(base + METRIC_ALLOCATED) + <i64>amount);
  }

  decreaseAt(base: i32, amount: u64): void {
    this.set(base + METRIC_CURRENT, this.get(base + METRIC_CURRENT) - <i64>amount);
    this.set(base + METRIC_FREED, this.get(base + METRIC_FREED) + <i64>amount);
  }

  @inline count(index: i32): void {
    this.set(index, this.get(index) + 1);
  }

  /**
   * The bounds every policy's statistics keep: in each pool allocated_bytes <= active_bytes <=
   * reserved_bytes, and every peak at least its current value. O(1).
   */
  withinBounds(): bool {
    for (let pool = 0; pool < 3; pool++) {
      const allocatedBytes = this.current(STAT_ALLOCATED_BYTES, pool);
      const activeBytes = this.current(STAT_ACTIVE_BYTES, pool);
      if (allocatedBytes > activeBytes || activeBytes > this.current(STAT_RESERVED_BYTES, pool)) return false;
    }
    for (let kind = 0; kind < ARRAY_STAT_KINDS; kind++) {
      for (let pool = 0; pool < 3; pool++) {
        if (this.peak(kind, pool) < this.current(kind, pool)) return false;
      }
    }
    return true;
  }
}
