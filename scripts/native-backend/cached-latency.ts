// Latency of the policy's own allocations and frees on a live device, as a caller of the allocator
// sees them: the trace's allocs and frees are handed to the policy one call at a time from
// JavaScript (policyMalloc / policyFree, the exports the property tests use), each timed. A call
// that made no driver call was served from the cache: that is the latency every tensor allocation
// pays; calls that reached the driver are reported apart. (The replay loop itself runs inside the
// Wasm and cannot be timed per event.) A free is timed at the trace's free_completed, as the
// request and completion together.
import { DeviceReplay, type AllocatorConf, type PolicyName } from "@lakebed/core-sim";
import { bindDriver, CallRecorder } from "@lakebed/api";
import { openDriver, type DriverKind } from "@lakebed/native-cuda";
import { Action, type DeviceTrace } from "@lakebed/traces";
import { summarize, type LatencySummary } from "./latency.js";

export interface CachedLatency {
  cachedAlloc: LatencySummary | null;
  cachedFree: LatencySummary | null;
  allocWithDriverCalls: LatencySummary | null;
  freeWithDriverCalls: LatencySummary | null;
  leaksAfterTeardown: number;
}

export function cachedLatency(backend: DriverKind, device: DeviceTrace, policy: PolicyName, conf: AllocatorConf, capacityBytes?: number): CachedLatency {
  const driver = openDriver(backend);
  let result: Omit<CachedLatency, "leaksAfterTeardown">;
  try {
    const recorder = new CallRecorder(false);
    const bound = bindDriver(driver, recorder);
    const session = new DeviceReplay(device, { policy, conf, capacityBytes, traceAddresses: false, deviceImports: bound.imports });
    const wasm = session.wasm;
    bound.setMemory(wasm.memory);
    const handles = new Map<number, number>();
    const cachedAlloc: number[] = [];
    const cachedFree: number[] = [];
    const allocDriver: number[] = [];
    const freeDriver: number[] = [];
    const ev = device.events;
    for (let i = 0; i < ev.length; i++) {
      const action = ev.action[i];
      if (action === Action.Alloc) {
        const calls = recorder.count;
        const t0 = performance.now();
        const h = wasm.policyMalloc(ev.size[i], ev.stream[i]);
        const us = (performance.now() - t0) * 1000;
        (recorder.count === calls ? cachedAlloc : allocDriver).push(us);
        if (h >= 0) handles.set(ev.blockId[i], h);
      } else if (action === Action.FreeCompleted) {
        const h = handles.get(ev.blockId[i]);
        if (h === undefined) continue;
        handles.delete(ev.blockId[i]);
        const calls = recorder.count;
        const t0 = performance.now();
        wasm.policyFree(h);
        const us = (performance.now() - t0) * 1000;
        (recorder.count === calls ? cachedFree : freeDriver).push(us);
      }
    }
    result = {
      cachedAlloc: summarize(cachedAlloc),
      cachedFree: summarize(cachedFree),
      allocWithDriverCalls: summarize(allocDriver),
      freeWithDriverCalls: summarize(freeDriver),
    };
  } finally {
    driver.teardown();
  }
  const left = driver.leakReport();
  return { ...result, leaksAfterTeardown: left.handles.length + left.reservations.length + left.mappings.length + left.mallocs.length };
}
