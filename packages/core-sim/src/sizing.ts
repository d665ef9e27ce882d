// PyTorch's sizing rules under given settings, answered by the same compiled code the policies
// run: what a request is rounded to, which pool it goes to, the size of a new segment for it, and
// whether a free block serving it is split.
import type { AllocatorConf } from "./conf.js";
import { applyConf, instantiate } from "./wasm.js";

export interface SizingRules {
  /** round_size: the bytes a request really takes */
  roundSize(requestBytes: number): number;
  /** the pool a rounded size goes to (small: up to and including 1 MiB) */
  pool(roundedBytes: number): "small" | "large";
  /** get_allocation_size: the size of a new segment for a rounded request */
  allocationSize(roundedBytes: number): number;
  /** should_split: does a free block of blockBytes serving the rounded request keep its remainder apart? */
  shouldSplit(blockBytes: number, roundedBytes: number): boolean;
}

export function sizingRules(conf: AllocatorConf): SizingRules {
  const wasm = instantiate();
  applyConf(wasm, conf);
  const pool = (rounded: number): "small" | "large" => (wasm.isSmallBytes(rounded) ? "small" : "large");
  return {
    roundSize: (bytes) => wasm.roundSizeBytes(bytes),
    pool,
    allocationSize: (rounded) => wasm.allocationSizeBytes(rounded),
    shouldSplit: (blockBytes, rounded) => wasm.shouldSplitBytes(blockBytes, rounded, pool(rounded) === "small" ? 1 : 0) === 1,
  };
}
