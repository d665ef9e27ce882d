import { describe, expect, it } from "vitest";
import { readTrace, type Trace } from "@lakebed/traces";
import { LiveReplayError, replayLive, type LiveBackend } from "@lakebed/api";
import { CALL_KINDS, DeviceError, openDriver, type CallKind } from "@lakebed/native-cuda";
import { haveSharedTraces, sharedTraces } from "./support/shared-traces.js";
import { hostAvailable, liveBackends } from "./support/live-drivers.js";
import { memfdMappingsOf, memfdsOf } from "../packages/native-cuda/test/proc-scan.js";

/**
 * Fault injection through live replays: every Nth driver call of one kind fails as the driver
 * would. The calls a policy can undo (memCreate, addressReserve, malloc, which answer out of
 * memory, and map and setAccess, which a driver can refuse in the middle of an operation) fail every
 * time (n = 1) and at every 3rd call: the policy rolls back what the operation did so far, takes its
 * out-of-memory path (free the cache, retry), stays valid after every event (isValid: the local
 * check after each, the whole walk every 1,024 events and at the end), and the
 * requests it cannot serve come back to the caller as out of memory. A failed release (unmap,
 * memRelease, addressFree, free) or pattern call throws the driver's DeviceError out of the replay.
 * Either way teardown leaves nothing: no handle, reservation, mapping or malloc in the driver's
 * tables, and no memfd or mapping of it in this process (counted from /proc).
 *
 * copyToHost, copyFromHost, memset and memGetInfo are calls no policy makes during a replay (the
 * differential test's call logs show it), and neither do the host tier's (hostReserve, copyOut,
 * copyIn, hostRelease) in these replays; they fail under injection through the Driver itself here,
 * as in native-cuda's own fault-injection test.
 */

/** A replay whose device calls include `call` (vms on mlp_offload stitches: every VMM call). */
const LIVE_CASES: Partial<Record<CallKind, { trace: string; policy: "caching" | "expandable" | "vms"; verifyData?: boolean }>> = {
  memCreate: { trace: "mlp_offload.exp", policy: "expandable" },
  addressReserve: { trace: "mlp_offload.def", policy: "vms" },
  malloc: { trace: "two_streams.def", policy: "caching" },
  memRelease: { trace: "gpt2_emptycache.def", policy: "vms" },
  addressFree: { trace: "gpt2_emptycache.def", policy: "vms" },
  map: { trace: "mlp_offload.exp", policy: "expandable" },
  setAccess: { trace: "mlp_offload.exp", policy: "expandable" },
  unmap: { trace: "gpt2_emptycache.def", policy: "vms" },
  free: { trace: "gpt2_emptycache.def", policy: "caching" },
  fillPattern: { trace: "two_streams.def", policy: "caching", verifyData: true },
  checkPattern: { trace: "two_streams.def", policy: "caching", verifyData: true },
};
const OOM_SHAPED = new Set<CallKind>(["memCreate", "addressReserve", "malloc", "map", "setAccess"]);
/** Calls that fail under injection through the Driver itself (see above); hostReserve too, apart. */
const DRIVER_ONLY = ["copyToHost", "copyFromHost", "memset", "memGetInfo", "copyOut", "copyIn", "hostRelease"] as const;
/** The map and setAccess undo paths of the other virtual-memory policies, besides expandable's. */
const MORE_ROLLBACK_CASES: { call: CallKind; trace: string; policy: "vms" | "lakebed"; conf?: string }[] = [
  { call: "map", trace: "mlp_offload.def", policy: "vms", conf: "fragLimit:2097152,reAlloc:1" },
  { call: "setAccess", trace: "mlp_offload.def", policy: "vms", conf: "fragLimit:2097152,reAlloc:1" },
  { call: "map", trace: "mlp_offload.def", policy: "lakebed" },
  { call: "setAccess", trace: "mlp_offload.def", policy: "lakebed" },
];

const traces = new Map<string, Trace>();
async function trace(name: string): Promise<Trace> {
  let t = traces.get(name);
  if (!t) traces.set(name, (t = await readTrace(sharedTraces + `/${name}.pickle.gz`)));
  return t;
}

function expectNothingMapped(): void {
  expect(memfdsOf("self", `lakebed:${process.pid}:`)).toEqual([]);
  expect(memfdMappingsOf("self", `lakebed:${process.pid}:`)).toEqual([]);
}

const zero = { handles: 0, reservations: 0, mappings: 0, mallocs: 0 };

describe.skipIf(!haveSharedTraces || !hostAvailable)("fault injection in live replays", () => {
  it("every call kind is covered", () => {
    expect(new Set([...Object.keys(LIVE_CASES), ...DRIVER_ONLY, "hostReserve"])).toEqual(new Set(CALL_KINDS));
  });

  for (const backend of liveBackends) {
    for (const [call, c] of Object.entries(LIVE_CASES) as Array<[CallKind, NonNullable<(typeof LIVE_CASES)[CallKind]>]>) {
      if (OOM_SHAPED.has(call)) {
        for (const n of [1, 3]) {
          it(`${backend}: every ${n === 1 ? "" : `${n}rd `}${call} answers out of memory: ${c.policy} on ${c.trace} stays valid, the caller gets OOM, nothing is left`, async () => {
            const { document } = await replayLive(await trace(c.trace), { backend: backend as LiveBackend, policy: c.policy, failEvery: { call, n }, checkLocal: true });
            const [d] = document.devices;
            expect(d.driverCounters[call]).toBeGreaterThan(0);
            if (n === 1) {
              // nothing can be allocated: every request that needed memory came back out of memory
              expect(d.ooms).toBeGreaterThan(0);
              expect(d.failedAllocs).toBeGreaterThan(0);
            } else {
              expect(d.allocRetries + d.ooms).toBeGreaterThan(0);
            }
            expect(d.leaks).toEqual(zero);
            expect(d.teardown.errors).toEqual([]);
            expectNothingMapped();
          });
        }
      } else {
        it(`${backend}: the 3rd ${call} fails: the replay stops with the driver's error, teardown leaves nothing`, async () => {
          const run = replayLive(await trace(c.trace), { backend: backend as LiveBackend, policy: c.policy, verifyData: c.verifyData, failEvery: { call, n: 3 }, checkLocal: true });
          const error = await run.then(() => null, (e: unknown) => e);
          expect(error).toBeInstanceOf(LiveReplayError);
          const e = error as LiveReplayError;
          expect(e.cause).toBeInstanceOf(DeviceError);
          expect((e.cause as DeviceError).code).toBe("INJECTED");
          expect((e.cause as DeviceError).call).toBe(call);
          expect(e.leaks).toEqual(zero);
          expect(e.teardown.errors).toEqual([]);
          // the driver had really made the calls before the failed one
          expect(e.calls.kinds.length).toBeGreaterThan(0);
          expectNothingMapped();
        });
      }
    }
  }

  for (const backend of liveBackends) {
    for (const c of MORE_ROLLBACK_CASES) {
      it(`${backend}: every 3rd ${c.call} is refused: ${c.policy} on ${c.trace} rolls back, stays valid, nothing is left`, async () => {
        const { document } = await replayLive(await trace(c.trace), { backend: backend as LiveBackend, policy: c.policy, conf: c.conf, failEvery: { call: c.call, n: 3 }, checkLocal: true });
        const [d] = document.devices;
        expect(d.driverCounters[c.call]).toBeGreaterThan(0);
        expect(d.leaks).toEqual(zero);
        expect(d.teardown.errors).toEqual([]);
        expectNothingMapped();
      });
    }
  }

  for (const call of DRIVER_ONLY) {
    it(`host: the 2nd ${call} fails (a call no replay makes), the tables stay exact, nothing is left`, () => {
      const d = openDriver("host", { failEvery: { call, n: 2 } });
      const G = d.granularity();
      const va = d.malloc(G);
      const buf = new Uint8Array(64);
      if (call === "copyOut" || call === "copyIn") d.hostReserve(G);
      const once = () => {
        if (call === "copyToHost") d.copyToHost(va, buf);
        else if (call === "copyFromHost") d.copyFromHost(va, buf);
        else if (call === "memset") d.memset(va, 1, 64);
        else if (call === "copyOut") d.copyOut(va, 0, 64);
        else if (call === "copyIn") d.copyIn(0, va, 64);
        else if (call === "hostRelease") {
          // a failed release keeps the arena: the next try releases it without reserving again
          if (d.counters().hostArenaBytes === 0) d.hostReserve(G);
          d.hostRelease();
        } else d.memGetInfo();
      };
      once();
      expect(once).toThrow(DeviceError);
      once();
      expect(d.counters().injected[call]).toBe(1);
      expect(d.isValid()).toBeNull();
      expect(d.teardown().errors).toEqual([]);
      expect(d.leakReport().clean).toBe(true);
      expectNothingMapped();
    });
  }

  it("host: the 2nd hostReserve answers out of memory (a call no replay makes); no arena is left behind", () => {
    const d = openDriver("host", { failEvery: { call: "hostReserve", n: 2 } });
    expect(d.hostReserve(4 << 20)).toBe(true);
    d.hostRelease();
    expect(d.hostReserve(4 << 20)).toBe(false);
    expect(d.counters()).toMatchObject({ hostArenaBytes: 0 });
    expect(d.counters().ooms.hostReserve).toBe(1);
    expect(d.hostReserve(4 << 20)).toBe(true);
    expect(d.teardown()).toMatchObject({ hostArenaBytes: 4 << 20, errors: [] });
    expect(d.leakReport().clean).toBe(true);
  });
});
