// A sorted list of disjoint address ranges [start, start + size), each with an i32 tag. The
// simulated device keeps its cudaMalloc'd ranges, reservations and mappings in these. They change
// once per device call (a few hundred per trace), never per allocation, so a sorted array with
// binary search and memmove is the simple right choice here.

export class RangeList {
  starts: StaticArray<u64> = new StaticArray<u64>(64);
  sizes: StaticArray<u64> = new StaticArray<u64>(64);
  tags: StaticArray<i32> = new StaticArray<i32>(64);
  count: i32 = 0;
  totalBytes: u64 = 0;

  /** Index of the first range whose start is >= addr. */
  lowerIndex(addr: u64): i32 {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (unchecked(this.starts[mid]) < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the range starting exactly at addr, or -1. */
  indexOf(addr: u64): i32 {
    const i = this.lowerIndex(addr);
    return i < this.count && unchecked(this.starts[i]) == addr ? i : -1;
  }

  /** Index of the range containing addr, or -1. */
  containing(addr: u64): i32 {
    const i = this.lowerIndex(addr + 1) - 1;
    if (i < 0) return -1;
    return addr < unchecked(this.starts[i]) + unchecked(this.sizes[i]) ? i : -1;
  }

  /** True when [addr, addr + size) shares a byte with any range. */
  overlaps(addr: u64, size: u64): bool {
    const i = this.lowerIndex(addr + size) - 1; // the last range starting before the end
    if (i < 0) return false;
    return unchecked(this.starts[i]) + unchecked(this.sizes[i]) > addr;
  }

  /** True when [addr, addr + size) lies inside one range. */
  covers(addr: u64, size: u64): bool {
    const i = this.containing(addr);
    return i >= 0 && addr + size <= unchecked(this.starts[i]) + unchecked(this.sizes[i]);
  }

  insert(addr: u64, size: u64, tag: i32): void {
    assert(!this.overlaps(addr, size), "range overlaps a live range");
    if (this.count == this.starts.length) this.grow();
    const i = this.lowerIndex(addr);
    const n = this.count - i;
    if (n > 0) {
      memory.copy(changetype<usize>(this.starts) + ((<usize>i + 1) << 3), changetype<usize>(this.starts) + (<usize>i << 3), <usize>n << 3);
      memory.copy(changetype<usize>(this.sizes) + ((<usize>i + 1) << 3), changetype<usize>(this.sizes) + (<usize>i << 3), <usize>n << 3);
      memory.copy(changetype<usize>(this.tags) + ((<usize>i + 1) << 2), changetype<usize>(this.tags) + (<usize>i << 2), <usize>n << 2);
    }
    unchecked((this.starts[i] = addr));
    unchecked((this.sizes[i] = size));
    unchecked((this.tags[i] = tag));
    this.count++;
    this.totalBytes += size;
  }

  removeAt(i: i32): void {
    this.totalBytes -= unchecked(this.sizes[i]);
    const n = this.count - i - 1;
    if (n > 0) {
      memory.copy(changetype<usize>(this.starts) + (<usize>i << 3), changetype<usize>(this.starts) + ((<usize>i + 1) << 3), <usize>n << 3);
      memory.copy(changetype<usize>(this.sizes) + (<usize>i << 3), changetype<usize>(this.sizes) + ((<usize>i + 1) << 3), <usize>n << 3);
      memory.copy(changetype<usize>(this.tags) + (<usize>i << 2), changetype<usize>(this.tags) + ((<usize>i + 1) << 2), <usize>n << 2);
    }
    this.count--;
  }

  start(i: i32): u64 { return unchecked(this.starts[i]); }
  size(i: i32): u64 { return unchecked(this.sizes[i]); }
  tag(i: i32): i32 { return unchecked(this.tags[i]); }

  private grow(): void {
    const capacity = this.starts.length * 2;
    const starts = new StaticArray<u64>(capacity);
    const sizes = new StaticArray<u64>(capacity);
    const tags = new StaticArray<i32>(capacity);
    memory.copy(changetype<usize>(starts), changetype<usize>(this.starts), <usize>this.count << 3);
    memory.copy(changetype<usize>(sizes), changetype<usize>(this.sizes), <usize>this.count << 3);
    memory.copy(changetype<usize>(tags), changetype<usize>(this.tags), <usize>this.count << 2);
    this.starts = starts;
    this.sizes = sizes;
    this.tags = tags;
  }
}
