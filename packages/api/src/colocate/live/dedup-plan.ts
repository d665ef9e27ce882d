// What each fingerprinted tenant of a scenario brings to a live dedup run: the digest of each of
// its whole parameter windows (the same join the simulator uses: parameter-chunks.ts), what it
// needs alone, and where its operations come from. A plan is plain JSON, so it can be made here
// and run on another machine (the GPU check).
//
// Made from a scenario, each tenant replays its own timeline (tenant-timeline.ts: its prologue,
// then its requests or steps up to the scenario's end) through its policy live, with its shared
// windows cut out of the prologue; what it needs alone is the same timeline whole, replayed through
// the same policy on the simulator (its peak reserved bytes). The replay's peak with the windows
// cut out is simulated here too, so that the live replay can be held to it.
import { resolve } from "node:path";
import { defaultAllocConf, replayDevice } from "@lakebed/core-sim";
import { readFingerprints, type DeviceTrace } from "@lakebed/traces";
import { loadTrace } from "../../load.js";
import { ScenarioError, type Scenario, type TenantSpec } from "../scenario.js";
import { segmentTrace } from "../trace-segments.js";
import { joinParameters, type ParameterBlock } from "../parameter-chunks.js";
import { tenantTimeline, type TenantTimeline } from "../tenant-timeline.js";
import { CHUNK_BYTES } from "../shared-pool.js";
import type { DedupTenantPlan } from "./dedup-tenant.js";

export interface LiveDedupPlan {
  scenario: string;
  chunkBytes: number;
  tenants: DedupTenantPlan[];
}

/** A tenant's timelines: whole (alone) and with its shared windows cut out (dedup). */
export interface TenantTimelines {
  keys: string[];
  alone: TenantTimeline;
  dedup: TenantTimeline;
}

/** A trace cut into segments and joined to its fingerprints, once per (trace, fingerprints):
 * tenants of one model share it (eight tenants of one 1B model load one trace, not eight). */
const joined = new Map<string, Promise<{ device: DeviceTrace; segmented: ReturnType<typeof segmentTrace>; join: ReturnType<typeof joinParameters> }>>();

function joinedTrace(trace: string, fingerprints: string) {
  const key = `${trace}\0${fingerprints}`;
  let entry = joined.get(key);
  if (!entry) {
    entry = loadTrace(trace, false, { withAccess: true }).then((loaded) => {
      const device: DeviceTrace = loaded.devices[0];
      const segmented = segmentTrace(device);
      return { device, segmented, join: joinParameters(device, segmented.prologue, readFingerprints(fingerprints)) };
    });
    joined.set(key, entry);
    entry.catch(() => joined.delete(key));
  }
  return entry;
}

/** The tenant's parameter windows and its two timelines (the scenario's tenant `index`). */
export async function tenantTimelines(scenario: Scenario, index: number): Promise<TenantTimelines> {
  const t: TenantSpec = scenario.tenants[index];
  if (t.fingerprints === null) throw new Error("the tenant has no fingerprints");
  const { device, segmented, join } = await joinedTrace(t.trace, t.fingerprints);
  const ops = [...join.byPrologueOp.keys()].sort((a, b) => a - b);
  const keys = ops.flatMap((k) => join.byPrologueOp.get(k)!.digests);
  const shared = new Map<number, ParameterBlock>(ops.map((k) => [k, join.byPrologueOp.get(k)!]));
  return {
    keys,
    alone: tenantTimeline(t, segmented, device.streams, scenario.durationS),
    dedup: tenantTimeline(t, segmented, device.streams, scenario.durationS, shared),
  };
}

/** Peak reserved bytes of a timeline replayed through `policy` on the simulator. */
export function simulatedPeak(trace: DeviceTrace, policy: TenantSpec["policy"]): number {
  return replayDevice(trace, { policy, conf: defaultAllocConf(), traceAddresses: false }).peakReservedBytes;
}

/** The plan of the scenario's tenants that have fingerprints (the others share nothing). */
export async function planLiveDedup(scenario: Scenario): Promise<LiveDedupPlan> {
  const tenants: DedupTenantPlan[] = [];
  for (const [i, t] of scenario.tenants.entries()) {
    if (t.fingerprints === null) continue;
    let plan: DedupTenantPlan;
    try {
      const { keys, alone, dedup } = await tenantTimelines(scenario, i);
      const aloneBytes = simulatedPeak(alone.trace, t.policy);
      const dedupPeak = simulatedPeak(dedup.trace, t.policy);
      plan = {
        name: t.name,
        keys,
        aloneBytes,
        privateBytes: dedupPeak,
        replay: { scenario: resolve(scenario.file), tenant: i, policy: t.policy, events: dedup.trace.events.length, segmentsRun: dedup.segmentsRun, simulatedPeakBytes: dedupPeak },
      };
    } catch (e) {
      throw new ScenarioError(`${scenario.file}: $.tenants[${i}]: ${(e as Error).message.split("\n")[0]}`);
    }
    tenants.push(plan);
  }
  if (tenants.length === 0) throw new ScenarioError(`${scenario.file}: no tenant has fingerprints: a live dedup run shares nothing`);
  return { scenario: scenario.file, chunkBytes: CHUNK_BYTES, tenants };
}
