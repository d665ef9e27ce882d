// Test support: every shared recorded trace replayed through one policy, with the policy's
// invariant checks or without, the shape vms-traces.test.ts and lakebed-traces.test.ts share.
import { defaultAllocConf, replayDevice, type AllocatorConf, type DeviceReplayResult, type PolicyName } from "@lakebed/core-sim";
import { loadTrace, recorded } from "./traces.js";

/**
 * "Valid after every event": the local check after each event, the whole walk every 1,024 events
 * and at the end (replayDevice's checkLocal; gpt2_ckpt under lakebed: about 3 s, against 142 s
 * for the walk after every event).
 */
export const CHECK_EVERY_EVENT = { checkLocal: true } as const;
export const NO_CHECKS = { checkLocal: false } as const;

/** The recorded trace's one device through `policy`, under the trace's own capacity, if any. */
export async function replayRecorded(
  name: string,
  policy: PolicyName,
  checks: { checkLocal: boolean },
  conf: AllocatorConf = defaultAllocConf(),
): Promise<DeviceReplayResult> {
  const t = recorded(name);
  const trace = await loadTrace(t.file);
  return replayDevice(trace.devices[0], { policy, conf, capacityBytes: t.capacityBytes, ...checks });
}
