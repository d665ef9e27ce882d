/**
 * The seam between the property harness and a memory policy: one live allocator instance driven one
 * request at a time. Every policy in @lakebed/core-sim is wrapped in this interface (see
 * core-sim-adapter.ts); the harness never looks inside a policy except through these calls.
 *
 * Sizes and addresses are whole bytes (exact in a float64). Streams are small integers (the index of
 * a stream, as in a trace's stream table).
 */

/** What malloc hands back: the caller's handle for the block, where it is, and how big it really is. */
export interface Allocation {
  /** opaque handle for free(); unique among live allocations */
  handle: number;
  address: number;
  /** bytes the caller may use: at least the request (rounding may make it larger) */
  sizeBytes: number;
}

/** A live (allocated) block as the policy reports it. */
export interface LiveBlock extends Allocation {
  requestedBytes: number;
  stream: number;
}

/**
 * A range of reserved device memory that the policy holds: a cudaMalloc'd segment for the caching
 * policy, a mapped page for expandable segments, a mapped chunk for stitching policies. Each range is
 * the policy's unit of release: `emptyCache` gives back every range no live block touches.
 */
export interface ReservedRange {
  address: number;
  sizeBytes: number;
  stream: number;
}

/** A reserved range with the blocks (free and allocated) the policy says it is cut into. */
export interface SegmentLayout extends ReservedRange {
  /** ascending by address; they must tile the range exactly (G-TILING) */
  blocks: { address: number; sizeBytes: number }[];
}

/**
 * For virtual-memory policies: one mapping of physical memory into the address space. `chunk` names a
 * physical allocation (a cuMemCreate handle); `chunkOffset` is where in it the mapping starts.
 */
export interface PhysicalMapping {
  address: number;
  sizeBytes: number;
  chunk: number;
  chunkOffset: number;
}

/** A device-level event the policy caused (what a trace records as segment_alloc/free/map/unmap). */
export interface DeviceEvent {
  action: "segment_alloc" | "segment_free" | "segment_map" | "segment_unmap";
  address: number;
  sizeBytes: number;
}

export interface AllocatorUnderTest {
  /** null: out of memory (after whatever the policy does to recover) */
  malloc(requestedBytes: number, stream: number): Allocation | null;
  free(handle: number): void;
  /** torch.cuda.empty_cache(): give cached memory back to the device */
  emptyCache(): void;
  /**
   * The memory the policy may reserve from now on, in bytes; null: unlimited. Returns false when the
   * policy cannot change its limit now (the harness then keeps the old one).
   */
  setCapacity(capacityBytes: number | null): boolean;
  /**
   * The policy's own check of its structures (INV-* checks), at two levels as mimalloc's cheap and
   * expensive assertions: "local" looks only at what the operations since the last check changed,
   * "full" walks everything.
   */
  isValid(level: "local" | "full"): boolean;
  /** statistics under torch.cuda.memory_stats() names */
  stats(): Record<string, number>;
  liveBlocks(): LiveBlock[];
  reservedRanges(): ReservedRange[];
  /** the reserved ranges with their blocks, where the policy reports them */
  layout?(): SegmentLayout[];
  /** virtual-memory policies only */
  physicalMappings?(): PhysicalMapping[];
  /** device events since the last call (for the cross-stream reuse check) */
  drainDeviceEvents?(): DeviceEvent[];
  /** frees whatever the instance holds outside the JavaScript heap */
  dispose(): void;
}

/** A policy the harness can test: a name and a way to make a fresh, empty instance. */
export interface PolicyUnderTest {
  name: string;
  /** the `--policy` of `lakebed replay` that runs a failing program (default: name) */
  replayPolicy?: string;
  /**
   * true for policies that map physical chunks: a live block must be backed by mappings that no other
   * live block shares (G-PHYSICAL) rather than lie inside one reserved range (a stitched block of vms
   * lies in a range of its own that maps the chunks of reserved segments)
   */
  virtualMemory: boolean;
  /**
   * How far reserved memory may pass a limit (G-CAPACITY). PyTorch checks the limit against the
   * request rounded to its allocation size, then an expandable segment maps whole pages, so it may
   * pass the limit by less than a page (20 MiB); default 0.
   */
  capacitySlackBytes?: number;
  /** the device's memory when no limit is set (G-OOM); default: unbounded */
  deviceBytes?: number;
  /** settings string in PYTORCH_CUDA_ALLOC_CONF syntax that `lakebed replay --conf` takes, if any */
  conf?: string;
  create(): AllocatorUnderTest;
}
