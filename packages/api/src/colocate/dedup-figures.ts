// Dedup of read-only memory across tenants, on the shared pool: each tenant's parameter chunks are
// mapped read-only through the pool's registry (identical digests, one physical chunk, reference
// counted: SharedPool.mapShared), the rest of its memory is its own. A window of a storage is
// shared only when it is a whole chunk: a storage's tail (and a storage under 2 MiB: norms,
// biases) shares a chunk with other data in the allocator's segments, so it stays private here.
// Physical sharing needs the whole chunks placed on chunk boundaries (a dedup allocator gives
// parameters chunks of their own); GLake dedups at "layer or block level" for the same reason.
import type { Fingerprints } from "@lakebed/traces";
import { CHUNK_BYTES, SharedPool } from "./shared-pool.js";

export interface DedupTenant {
  name: string;
  /** device memory the tenant needs alone (its replay's peak reserved bytes) */
  aloneBytes: number;
  fingerprints: Fingerprints;
}

export interface DedupFigure {
  tenants: number;
  /** the tenants' memory, each alone, added up (chunks) */
  withoutBytes: number;
  /** the same tenants on one pool with their identical parameter chunks shared */
  withBytes: number;
  ratio: number;
  sharedChunks: number;
  /** whole-chunk parameter bytes of one tenant (what it can share at most) */
  shareablePerTenantBytes: number;
}

/** The tenants' memory with and without dedup, measured on a pool with the dedup registry. */
export function dedupFigure(tenants: DedupTenant[]): DedupFigure {
  const chunksOf = (bytes: number) => Math.ceil(bytes / CHUNK_BYTES);
  const without = tenants.reduce((s, t) => s + chunksOf(t.aloneBytes), 0);
  const pool = new SharedPool(Math.max(1, without) * CHUNK_BYTES, { zeroFill: () => 0 });
  const keys = new Map<string, number>();
  let shareable = 0;
  tenants.forEach((t, i) => {
    if (t.fingerprints.chunkBytes !== CHUNK_BYTES) throw new Error(`${t.name}: fingerprints of ${t.fingerprints.chunkBytes}-byte windows; the pool's chunks are ${CHUNK_BYTES} bytes`);
    let whole = 0;
    for (const s of t.fingerprints.storages) {
      s.chunks.forEach((digest, k) => {
        if ((k + 1) * CHUNK_BYTES > s.bytes) return; // a tail: not a chunk of its own
        let key = keys.get(digest);
        if (key === undefined) keys.set(digest, (key = keys.size));
        if (pool.mapShared(i, key) === null) throw new Error(`${t.name}: the dedup pool ran out of chunks`);
        whole++;
      });
    }
    if (i === 0) shareable = whole * CHUNK_BYTES;
    const own = Math.max(0, chunksOf(t.aloneBytes) - whole);
    if (own > 0 && pool.claim(i, own) === null) throw new Error(`${t.name}: the dedup pool ran out of chunks`);
  });
  const broken = pool.brokenInvariant();
  if (broken !== 0) throw new Error(`dedup pool: INV-POOL-${broken} broken`);
  const used = pool.chunks - pool.freeChunks;
  return { tenants: tenants.length, withoutBytes: without * CHUNK_BYTES, withBytes: used * CHUNK_BYTES, ratio: without === 0 ? 1 : used / without, sharedChunks: pool.sharedChunks, shareablePerTenantBytes: shareable };
}

/** N = 1..maxN copies of one tenant (N processes of one model loaded with the same weights). */
export function dedupSweep(tenant: DedupTenant, maxN = 8): DedupFigure[] {
  const out: DedupFigure[] = [];
  for (let n = 1; n <= maxN; n++) out.push(dedupFigure(Array.from({ length: n }, (_, i) => ({ ...tenant, name: `${tenant.name}#${i}` }))));
  return out;
}
