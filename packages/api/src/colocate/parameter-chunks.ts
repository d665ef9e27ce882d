// Which of a tenant's prologue blocks hold fingerprinted read-only content: the join of its
// fingerprints (python/lakebed_record.py's fingerprint(), taken after the model is loaded) to the
// blocks its trace never frees, by address (a storage's data pointer is the address of the block
// that backs it, in the same run). A block is shared only if nothing writes it after the
// fingerprints were taken: where the trace has its operator record (NAME.access.json.gz), a block
// any operator mutates (LoRA adapters under the optimizer) stays private; without one, the
// fingerprints' word that parameters and buffers are read-only is taken.
import { UseKind, type DeviceTrace, type Fingerprints } from "@lakebed/traces";
import { Action } from "@lakebed/traces";
import type { SegmentOps } from "./trace-segments.js";
import { CHUNK_BYTES } from "./shared-pool.js";

export interface ParameterBlock {
  /** digests of the block's whole 2 MiB windows: each one shared chunk */
  digests: string[];
  /** what stays the tenant's own: the tail under one chunk */
  privateBytes: number;
}

export interface ParameterJoin {
  /** prologue operation index -> its shared content */
  byPrologueOp: Map<number, ParameterBlock>;
  storages: number;
  /** storages found as prologue blocks */
  joined: number;
  /** of them, written after load (left private) */
  written: number;
}

export function joinParameters(trace: DeviceTrace, prologue: SegmentOps, fp: Fingerprints): ParameterJoin {
  if (fp.chunkBytes !== CHUNK_BYTES) throw new Error(`fingerprints of ${fp.chunkBytes}-byte windows; the pool's chunks are ${CHUNK_BYTES} bytes`);
  const written = writtenAddresses(trace);
  const byAddress = new Map(fp.storages.map((s) => [s.address, s]));
  const byPrologueOp = new Map<number, ParameterBlock>();
  let joined = 0;
  let writtenCount = 0;
  for (let k = 0; k < prologue.length; k++) {
    if (!prologue.isAlloc[k]) continue;
    const s = byAddress.get(prologue.traceAddress[k]);
    if (s === undefined || s.bytes > prologue.bytes[k]) continue;
    joined++;
    if (written.has(s.address)) {
      writtenCount++;
      continue;
    }
    const whole = Math.floor(s.bytes / CHUNK_BYTES);
    byPrologueOp.set(k, { digests: s.chunks.slice(0, whole), privateBytes: prologue.bytes[k] - whole * CHUNK_BYTES });
  }
  return { byPrologueOp, storages: fp.storages.length, joined, written: writtenCount };
}

/** Addresses of blocks an operator of the trace's record wrote (mutated, or made as its result). */
function writtenAddresses(trace: DeviceTrace): Set<number> {
  const out = new Set<number>();
  const a = trace.access;
  if (!a) return out;
  const wrote = new Set<number>();
  for (let u = 0; u < a.uses.length; u++) if ((a.uses.kind[u] & UseKind.Write) !== 0) wrote.add(a.uses.blockId[u]);
  const e = trace.events;
  for (let i = 0; i < e.length; i++) if (e.action[i] === Action.Alloc && wrote.has(e.blockId[i])) out.add(e.addr[i]);
  return out;
}
