// GMLake's own settings for the vms policy, under GMLake's names and meanings (its environment
// variables, read once at start in GMLake; here the `--conf` keys of the same names, parsed by
// src/conf.ts). The defaults are GMLake master's (commit 392d840 onwards), the code users get
// today; docs/policies.md says why, and what the older torch-1.13.1 branch used.

import { MiB } from "../config";

export const GiB: u64 = 1 << 30;

export class VmsConfig {
  /** vmmDefragment: 0 turns stitching and stitched-view reuse off (VMM backing stays) */
  vmmDefragment: i32 = 1;
  /** fragLimit: the smallest request (bytes) that may be served by stitching */
  fragLimitBytes: u64 = 512 * MiB;
  /** defragLevel: the earliest malloc stage at which stitching may run (0, 1, 2; 3+: never) */
  defragLevel: i32 = 0;
  /** reuseLimit: a cached stitched view serves a request only if its size <= request x this */
  reuseLimit: f64 = 10;
  /** autoGC (GiB): cached stitched views are collected, oldest first, above this many bytes */
  autoGCBytes: u64 = 1000 * GiB;
  /** reAlloc: > 0 creates only the shortfall (request - free bytes) and stitches it with the free blocks */
  reAlloc: i32 = 0;
}

export const vmsConf = new VmsConfig();

/** The Wasm export that sets vmsConf (before start). */
export function setVmsConf(vmmDefragment: i32, fragLimitBytes: f64, defragLevel: i32, reuseLimit: f64, autoGCGiB: f64, reAlloc: i32): void {
  vmsConf.vmmDefragment = vmmDefragment;
  vmsConf.fragLimitBytes = <u64>fragLimitBytes;
  vmsConf.defragLevel = defragLevel;
  vmsConf.reuseLimit = reuseLimit;
  vmsConf.autoGCBytes = <u64>(autoGCGiB * <f64>GiB);
  vmsConf.reAlloc = reAlloc;
}
