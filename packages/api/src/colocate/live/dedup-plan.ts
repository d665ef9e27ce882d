// What each fingerprinted tenant of a scenario brings to a live dedup run: the digest of each of
// its whole parameter windows (the same join the simulator uses: parameter-chunks.ts) and what it
// needs alone (its trace's peak reserved bytes through its policy, as dedup-figures.ts counts it).
// A plan is plain JSON, so it can be made here and run on another machine (the GPU check).
import { defaultAllocConf, replayDevice } from "@lakebed/core-sim";
import { readFingerprints } from "@lakebed/traces";
import { loadTrace } from "../../load.js";
import { ScenarioError, type Scenario } from "../scenario.js";
import { segmentTrace } from "../trace-segments.js";
import { joinParameters } from "../parameter-chunks.js";
import { CHUNK_BYTES } from "../shared-pool.js";
import type { DedupTenantPlan } from "./dedup-tenant.js";

export interface LiveDedupPlan {
  scenario: string;
  chunkBytes: number;
  tenants: DedupTenantPlan[];
}

/** The plan of the scenario's tenants that have fingerprints (the others share nothing). */
export async function planLiveDedup(scenario: Scenario): Promise<LiveDedupPlan> {
  const tenants: DedupTenantPlan[] = [];
  const cache = new Map<string, { keys: string[]; aloneBytes: number }>();
  for (const [i, t] of scenario.tenants.entries()) {
    if (t.fingerprints === null) continue;
    const cacheKey = `${t.trace}\0${t.policy}\0${t.fingerprints}`;
    let entry = cache.get(cacheKey);
    if (!entry) {
      try {
        const trace = await loadTrace(t.trace, false, { withAccess: true });
        const device = trace.devices[0];
        const join = joinParameters(device, segmentTrace(device).prologue, readFingerprints(t.fingerprints));
        const keys = [...join.byPrologueOp.keys()].sort((a, b) => a - b).flatMap((k) => join.byPrologueOp.get(k)!.digests);
        const aloneBytes = replayDevice(device, { policy: t.policy, conf: defaultAllocConf(), traceAddresses: false }).peakReservedBytes;
        entry = { keys, aloneBytes };
      } catch (e) {
        throw new ScenarioError(`${scenario.file}: $.tenants[${i}]: ${(e as Error).message.split("\n")[0]}`);
      }
      cache.set(cacheKey, entry);
    }
    tenants.push({ name: t.name, keys: entry.keys, aloneBytes: entry.aloneBytes, privateBytes: Math.max(0, entry.aloneBytes - entry.keys.length * CHUNK_BYTES) });
  }
  if (tenants.length === 0) throw new ScenarioError(`${scenario.file}: no tenant has fingerprints: a live dedup run shares nothing`);
  return { scenario: scenario.file, chunkBytes: CHUNK_BYTES, tenants };
}
