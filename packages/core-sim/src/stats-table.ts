// The names of the policy statistics, as torch.cuda.memory_stats() spells them, in the order of
// the Wasm's flat stats table (assembly/policies/stats.ts draws the layout; a test checks that
// both have the same length).

const ARRAY_STATS = [
  "allocation",
  "segment",
  "active",
  "inactive_split",
  "allocated_bytes",
  "reserved_bytes",
  "active_bytes",
  "inactive_split_bytes",
  "requested_bytes",
] as const;
const POOLS = ["all", "small_pool", "large_pool"] as const;
const METRICS = ["current", "peak", "allocated", "freed"] as const;
const SCALAR_STATS = ["oversize_allocations", "oversize_segments"] as const;
const COUNTERS = [
  "num_alloc_retries",
  "num_ooms",
  "num_sync_all_streams",
  "num_device_alloc",
  "num_device_free",
  "max_split_size",
] as const;

/** Stat names by index in the Wasm's stats table. */
export const STAT_NAMES: readonly string[] = [
  ...ARRAY_STATS.flatMap((kind) => POOLS.flatMap((pool) => METRICS.map((metric) => `${kind}.${pool}.${metric}`))),
  ...SCALAR_STATS.flatMap((kind) => METRICS.map((metric) => `${kind}.${metric}`)),
  ...COUNTERS,
];
