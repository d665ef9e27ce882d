// Test support: every shared recorded trace replayed through one policy with isValid after every
// event, the shape vms-traces.test.ts and lakebed-traces.test.ts share.
import { defaultAllocConf, replayDevice, type AllocatorConf, type DeviceReplayResult, type PolicyName } from "@lakebed/core-sim";
import { loadTrace, recorded } from "./traces.js";

/** Checking isValid after each of a few hundred thousand events takes minutes on the biggest trace. */
export const CHECKED_REPLAY_TIMEOUT_MS = 1_800_000;

/** The recorded trace's one device through `policy`, under the trace's own capacity, if any. */
export async function replayRecorded(name: string, policy: PolicyName, checkEvery: number, conf: AllocatorConf = defaultAllocConf()): Promise<DeviceReplayResult> {
  const t = recorded(name);
  const trace = await loadTrace(t.file);
  return replayDevice(trace.devices[0], { policy, conf, capacityBytes: t.capacityBytes, checkEvery });
}
