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

export function checkStats(s: Record<string, number>, prev: Record<string, number> | null, e: Expected): void {
  const get = (k: string) => s[k];
  for (const base of ARRAY_STATS) {
    for (const pool of POOLS) {
      const key = (m: string) => `${base}.${pool}.${m}`;
      const cur = get(key("current"));
      if (cur === undefined) continue;
      const peak = get(key("peak"));
      const allocated = get(key("allocated"));
      const freed = get(key("freed"));
      if (cur < 0) fail("G-STATS", `${key("current")} = ${cur} < 0`);
      if (allocated !== undefined && freed !== undefined && cur !== allocated - freed) {
        fail("G-STATS", `${key("current")} = ${cur} but allocated - freed = ${allocated} - ${freed}`);
      }
      if (peak !== undefined && peak < cur) fail("G-STATS", `${key("peak")} = ${peak} < current ${cur}`);
      if (prev) {
        for (const m of ["peak", "allocated", "freed"]) {
          if (s[key(m)] !== undefined && prev[key(m)] !== undefined && s[key(m)] < prev[key(m)]) {
            fail("G-STATS", `${key(m)} went down from ${prev[key(m)]} to ${s[key(m)]}`);
          }
        }
      }
    }
    for (const m of ["current", "allocated", "freed"]) {
      const all = get(`${base}.all.${m}`);
      const small = get(`${base}.small_pool.${m}`);
      const large = get(`${base}.large_pool.${m}`);
      if (all !== undefined && small !== undefined && large !== undefined && all !== small + large) {
        fail("G-STATS", `${base}.all.${m} = ${all} but small_pool + large_pool = ${small} + ${large}`);
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
