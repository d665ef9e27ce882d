/**
 * Which private memory pools (CUDA graphs, torch.cuda.MemPool) the snapshot's segments belong to.
 * PyTorch numbers a CUDA graph's pool (id, 0) and a user's MemPool (0, id) (MempoolId_t), and
 * writes it on every segment as `segment_pool_id`; (0, 0) is the default pools.
 */
import type { PrivatePoolUse } from "./model.js";
import type { RawSegment } from "./snapshot-segments.js";

export function privatePoolUse(segments: readonly RawSegment[]): PrivatePoolUse[] {
  const pools = new Map<string, PrivatePoolUse>();
  for (const s of segments) {
    if (s.poolId === null) continue;
    const key = s.poolId.join(",");
    let use = pools.get(key);
    if (use === undefined) {
      use = { id: s.poolId, kind: s.poolId[0] !== 0 ? "cuda_graph" : "mempool", segments: 0, bytes: 0 };
      pools.set(key, use);
    }
    use.segments++;
    use.bytes += s.totalSize;
  }
  return [...pools.values()].sort((x, y) => x.id[0] - y.id[0] || x.id[1] - y.id[1]);
}
