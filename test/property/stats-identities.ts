import { fail } from "./guarantees.js";

/**
 * G-STATS: identities between torch.cuda.memory_stats()-named statistics and what the policy holds.
 * Only the statistics a policy reports are checked; every policy in core-sim reports PyTorch's.
 *
 *  - every array stat: current = allocated - freed >= 0; peak >= current; peak, allocated and freed
 *    never go down; all = small_pool + large_pool for current, allocated and freed;
 *  - allocation / allocated_bytes / requested_bytes (all) = count / Σ size / Σ request of live
 *    blocks, and their peaks = the largest values seen after any step (each step changes them once);
 *  - active = allocation and active_bytes = allocated_bytes (the harness never records other streams
 *    on a block, so nothing waits on stream events);
 *  - reserved_bytes = Σ reserved ranges >= allocated_bytes; inactive_split_bytes <= reserved -
 *    allocated; reserved_bytes.peak >= every reserved value seen;
 *  - num_ooms = the number of failed mallocs.
 */
const ARRAY_STATS = [
  "allocation",
  "active",
  "allocated_bytes",
  "active_bytes",
  "requested_bytes",
  "reserved_bytes",
  "segment",
  "inactive_split",
  "inactive_split_bytes",
] as const;
const POOLS = ["all", "small_pool", "large_pool"] as const;

export interface Expected {
  liveCount: number;
  liveBytes: number;
  requestedBytes: number;
  reservedBytes: number;
  peakLiveCount: number;
  peakLiveBytes: number;
  peakRequestedBytes: number;
  peakReservedBytes: number;
  ooms: number;
}

/**
 * The keys the array-stat checks read, built once: the checks run after every step of every run,
 * and building the key strings each time was 40% of the quick pass.
 */
const METRICS = ["current", "allocated", "freed"] as const;
const ARRAY_KEYS = ARRAY_STATS.map((base) => ({
  pools: POOLS.map((pool) => ({
    current: `${base}.${pool}.current`,
    peak: `${base}.${pool}.peak`,
    allocated: `${base}.${pool}.allocated`,
    freed: `${base}.${pool}.freed`,
  })),
  sums: METRICS.map((m) => ({ all: `${base}.all.${m}`, small: `${base}.small_pool.${m}`, large: `${base}.large_pool.${m}` })),
}));

export function checkStats(s: Record<string, number>, prev: Record<string, number> | null, e: Expected): void {
  const get = (k: string) => s[k];
  for (const { pools, sums } of ARRAY_KEYS) {
    for (const k of pools) {
      const cur = get(k.current);
      if (cur === undefined) continue;
      const peak = get(k.peak);
      const allocated = get(k.allocated);
      const freed = get(k.freed);
      if (cur < 0) fail("G-STATS", `${k.current} = ${cur} < 0`);
      if (allocated !== undefined && freed !== undefined && cur !== allocated - freed) {
        fail("G-STATS", `${k.current} = ${cur} but allocated - freed = ${allocated} - ${freed}`);
      }
      if (peak !== undefined && peak < cur) fail("G-STATS", `${k.peak} = ${peak} < current ${cur}`);
      if (prev) {
        for (const key of [k.peak, k.allocated, k.freed]) {
          if (s[key] !== undefined && prev[key] !== undefined && s[key] < prev[key]) {
            fail("G-STATS", `${key} went down from ${prev[key]} to ${s[key]}`);
          }
        }
      }
    }
    for (const k of sums) {
      const all = get(k.all);
      const small = get(k.small);
      const large = get(k.large);
      if (all !== undefined && small !== undefined && large !== undefined && all !== small + large) {
        fail("G-STATS", `${k.all} = ${all} but small_pool + large_pool = ${small} + ${large}`);
      }
    }
  }

  const expectEq = (k: string, want: number, what: string) => {
    const v = get(k);
    if (v !== undefined && v !== want) fail("G-STATS", `${k} = ${v} but ${what} = ${want}`);
  };
  expectEq("allocation.all.current", e.liveCount, "live blocks");
  expectEq("allocated_bytes.all.current", e.liveBytes, "Σ live block sizes");
  expectEq("requested_bytes.all.current", e.requestedBytes, "Σ live requests");
  expectEq("active.all.current", e.liveCount, "live blocks");
  expectEq("active_bytes.all.current", e.liveBytes, "Σ live block sizes");
  expectEq("reserved_bytes.all.current", e.reservedBytes, "Σ reserved ranges");
  expectEq("allocation.all.peak", e.peakLiveCount, "the most blocks live at once");
  expectEq("allocated_bytes.all.peak", e.peakLiveBytes, "the most bytes live at once");
  expectEq("requested_bytes.all.peak", e.peakRequestedBytes, "the most bytes requested at once");
  expectEq("num_ooms", e.ooms, "failed mallocs");
  const reservedPeak = get("reserved_bytes.all.peak");
  if (reservedPeak !== undefined && reservedPeak < e.peakReservedBytes) {
    fail("G-STATS", `reserved_bytes.all.peak = ${reservedPeak} < ${e.peakReservedBytes} reserved after an earlier step`);
  }
  if (e.reservedBytes < e.liveBytes) fail("G-STATS", `reserved ${e.reservedBytes} B < allocated ${e.liveBytes} B`);
  const inactiveSplit = get("inactive_split_bytes.all.current");
  if (inactiveSplit !== undefined && inactiveSplit > e.reservedBytes - e.liveBytes) {
    fail("G-STATS", `inactive_split_bytes = ${inactiveSplit} > reserved - allocated = ${e.reservedBytes - e.liveBytes}`);
  }
}
