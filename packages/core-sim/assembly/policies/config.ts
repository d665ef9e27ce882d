// The allocator settings PyTorch reads from PYTORCH_CUDA_ALLOC_CONF (CUDAAllocatorConfig /
// AcceleratorAllocatorConfig), as the caching policy uses them. The TypeScript side parses the
// settings string (src/conf.ts) and sets these fields through the Wasm exports.

export const MiB: u64 = 1 << 20;
/** PyTorch's SIZE_MAX: max_split_size when unlimited */
export const UNLIMITED: u64 = u64.MAX_VALUE;
/** 16 power-of-two size buckets, 1 MiB .. 32 GiB starts (kRoundUpPowerOfTwoIntervals) */
export const ROUNDUP_BUCKETS: i32 = 16;

export class AllocatorConfig {
  /** blocks this large or larger are never split (max_split_size_mb) */
  maxSplitSizeBytes: u64 = UNLIMITED;
  /** how much larger than a request an unsplit oversize block may be (max_non_split_rounding_mb) */
  maxNonSplitRoundingBytes: u64 = 20 * MiB;
  /** fraction of the allowed memory above which cached blocks are reclaimed; 0: off */
  garbageCollectionThreshold: f64 = 0;
  expandableSegments: bool = false;
  /** segment for 1-10 MiB requests and large expandable page (large_segment_size_mb; 2026 main) */
  largeSegmentBytes: u64 = 20 * MiB;
  /** roundup_power2_divisions per bucket; 0: plain 512-byte rounding */
  roundupDivisions: StaticArray<u32> = new StaticArray<u32>(ROUNDUP_BUCKETS);
}
