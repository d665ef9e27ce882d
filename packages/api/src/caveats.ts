/**
 * What lakebed cannot reproduce of a trace, said where the user looks: `info` and `verify` print it,
 * `replay` and `compare` warn on stderr, the HTML report shows it above its charts.
 */
import type { PrivatePoolUse, Trace } from "@lakebed/traces";
import { formatBytes } from "./units.js";
import { warn } from "./output.js";

/**
 * What a replay of this trace cannot reproduce, in one line, or null. Today: private memory pools
 * (CUDA graphs, torch.cuda.MemPool), which the trace does not attribute allocations to.
 */
export function privatePoolCaveat(trace: Trace): string | null {
  const used = trace.devices.filter((d) => d.privatePools.length > 0);
  if (used.length === 0) return null;
  const where = used.map((d) => `device ${d.device}: ${describePools(d.privatePools)}`).join("; ");
  return `the trace allocates from private memory pools (${where}); trace entries do not say which allocations went there, so lakebed serves them from the default pools and its figures for this trace are approximate`;
}

/** Says on stderr what a replay of `trace` cannot reproduce (stdout stays the command's own). */
export function warnAboutCaveats(trace: Trace): void {
  const caveat = privatePoolCaveat(trace);
  if (caveat !== null) warn(`${trace.file}: ${caveat}`);
}

/** "2 segments (34.00 MiB) in CUDA graph pool (1, 0)", for each pool. */
function describePools(pools: readonly PrivatePoolUse[]): string {
  return pools
    .map((p) => `${p.segments} segment${p.segments === 1 ? "" : "s"} (${formatBytes(p.bytes)}) in ${p.kind === "cuda_graph" ? "CUDA graph" : "MemPool"} pool (${p.id[0]}, ${p.id[1]})`)
    .join(", ");
}
