import { afterEach, describe, expect, it } from "vitest";
import { DEVICE_SIMULATED, instantiate, POLICY_CODES, type CoreSimExports } from "@lakebed/core-sim";
import { DeviceError, openDriver, type Driver } from "@lakebed/native-cuda";
import { DEVICE_IMPORTED } from "../packages/core-sim/src/wasm.js";
import { DEVICE_CALL_NAMES } from "../packages/core-sim/src/device-calls.js";
import { bindDriver } from "../packages/native-cuda/src/wasm-imports.js";
import { CallRecorder } from "../packages/api/src/live/call-recorder.js";
import { cudaAvailable, cudaSkipReason, hostAvailable } from "./support/live-drivers.js";
import { Rng } from "./support/random.js";

/**
 * The host tier behind the Device seam (issue 14, item 2): one pinned arena per device, addressed
 * by offset, and copies between it and mapped device ranges. On the host driver the bytes really
 * travel (memfd chunks out to the arena, the chunks released, new ones mapped at the same
 * addresses, the bytes back); the simulated device checks the same rules and counts bytes and
 * time from the cost model.
 */
const MiB = 1 << 20;
const GiB = 1 << 30;
const COPY_OUT = DEVICE_CALL_NAMES.indexOf("copyOut");
const COPY_IN = DEVICE_CALL_NAMES.indexOf("copyIn");

function randomBytes(n: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const v = rng.u32();
    for (let k = 0; k < 4 && i + k < n; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
  }
  return out;
}

/** The index of the first byte where a and b differ, or -1 (a failing expect would print megabytes). */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** `count` fresh chunks mapped with access, side by side from va; returns their handles. */
function mapChunks(d: Driver, va: number, count: number): number[] {
  const g = d.granularity();
  const handles: number[] = [];
  for (let i = 0; i < count; i++) {
    const h = d.memCreate(g);
    d.map(va + i * g, g, h);
    handles.push(h);
  }
  d.setAccess(va, count * g);
  return handles;
}

function unmapChunks(d: Driver, va: number, handles: number[]): void {
  d.unmap(va, handles.length * d.granularity());
  for (const h of handles) d.memRelease(h);
}

// The same tests on both drivers: DriverCore checks and counts alike, only the backend differs.
const drivers = [
  { kind: "host", available: hostAvailable, title: "the host tier on the host driver" },
  { kind: "cuda", available: cudaAvailable, title: `the host tier on the cuda driver${cudaAvailable ? "" : ` (skipped: ${cudaSkipReason})`}` },
] as const;

for (const { kind, available, title } of drivers) describe.skipIf(!available)(title, () => {
  let driver: Driver | null = null;
  const open = (): Driver => (driver = openDriver(kind));
  afterEach(() => {
    driver?.teardown();
    driver = null;
  });

  it("a range copied out, released, created and mapped again at the same va, and copied back, holds every byte", () => {
    const d = open();
    const g = d.granularity();
    const chunks = 4;
    const bytes = chunks * g;
    const va = d.addressReserve(bytes);
    const written = randomBytes(bytes, 14);
    let handles = mapChunks(d, va, chunks);
    d.copyFromHost(va, written);

    expect(d.hostReserve(3 * bytes)).toBe(true);
    // the whole range at an offset, and a part that starts and ends inside chunks
    d.copyOut(va, bytes, bytes);
    const part = { va: va + g / 2 + 3, bytes: g + 1001 };
    d.copyOut(part.va, 0, part.bytes);
    unmapChunks(d, va, handles);
    expect(d.counters().liveMappings).toBe(0);

    handles = mapChunks(d, va, chunks);
    const fresh = new Uint8Array(bytes);
    d.copyToHost(va, fresh);
    // new memfd chunks start zeroed; cuMemCreate promises nothing, so the range is zeroed there
    if (kind === "host") expect(fresh.every((b) => b === 0), "new memfd chunks start zeroed").toBe(true);
    else d.memset(va, 0, bytes);

    d.copyIn(bytes, va, bytes);
    const back = new Uint8Array(bytes);
    d.copyToHost(va, back);
    expect(firstDifference(back, written)).toBe(-1);

    // the part comes back where it came from, over a zeroed range
    d.memset(va, 0, bytes);
    d.copyIn(0, part.va, part.bytes);
    const partBack = new Uint8Array(part.bytes);
    d.copyToHost(part.va, partBack);
    expect(firstDifference(partBack, written.subarray(part.va - va, part.va - va + part.bytes))).toBe(-1);

    const c = d.counters();
    expect([c.calls.hostReserve, c.calls.copyOut, c.calls.copyIn, c.calls.hostRelease]).toEqual([1, 2, 2, 0]);
    expect(c.hostArenaBytes).toBe(3 * bytes);
    d.hostRelease();
    expect(d.counters().hostArenaBytes).toBe(0);
    unmapChunks(d, va, handles);
    d.addressFree(va, bytes);
    expect(d.isValid()).toBeNull();
    expect(d.leakReport().clean).toBe(true);
  });

  it("refuses a copy outside the arena, from a range that is not mapped with access, before or after the arena, and a second arena", () => {
    const d = open();
    const g = d.granularity();
    const va = d.addressReserve(4 * g);
    const refused = (f: () => void, why: RegExp) => {
      let error: unknown = null;
      try {
        f();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DeviceError);
      expect((error as DeviceError).code).toBe("INVALID");
      expect((error as Error).message).toMatch(why);
    };
    const handles = mapChunks(d, va, 2);
    refused(() => d.copyOut(va, 0, g), /no host arena is reserved/);
    refused(() => d.hostRelease(), /no host arena is reserved/);

    expect(d.hostReserve(2 * g)).toBe(true);
    refused(() => d.copyOut(va, g + 1, g), /runs past the host arena of 4194304 bytes/);
    refused(() => d.copyIn(2 * g, va, 1), /runs past the host arena/);
    // past the mappings: the reservation's third chunk is not mapped
    refused(() => d.copyOut(va + g, 0, 2 * g), /part of the range is not mapped/);
    refused(() => d.copyIn(0, va + 3 * g, 16), /neither inside a malloc nor mapped|not mapped/);
    // mapped, but setAccess was never called on it
    const noAccess = d.memCreate(g);
    d.map(va + 2 * g, g, noAccess);
    refused(() => d.copyOut(va + 2 * g, 0, g), /without access/);
    refused(() => d.hostReserve(g), /already holds a host arena of 4194304 bytes/);

    const c = d.counters();
    expect(c.failures.copyOut + c.failures.copyIn).toBe(6);
    expect(c.hostArenaBytes).toBe(2 * g);
    d.hostRelease();
    refused(() => d.copyIn(0, va, g), /no host arena is reserved/);
    // a new arena after the release (one at a time, not one in a life)
    expect(d.hostReserve(g)).toBe(true);
    d.copyIn(0, va, g);
    d.hostRelease();
    unmapChunks(d, va, [...handles, noAccess]);
    expect(d.isValid()).toBeNull();
  });

  it("a refused pin leaves no arena, and teardown releases one left behind", () => {
    const d = open();
    d.failEvery("hostReserve", 1);
    expect(d.hostReserve(8 * MiB)).toBe(false);
    expect(d.counters().hostArenaBytes).toBe(0);
    d.failEvery("hostReserve", 0);
    expect(d.hostReserve(8 * MiB)).toBe(true);
    expect(d.leakReport()).toMatchObject({ clean: false, hostArenaBytes: 8 * MiB });
    expect(d.teardown()).toMatchObject({ hostArenaBytes: 8 * MiB, errors: [] });
    expect(d.leakReport()).toMatchObject({ clean: true, hostArenaBytes: 0 });
    driver = null;
  });

  it("the same copies made by the Wasm's imported device, at the policy's model addresses, logged as the simulator logs them", () => {
    const d = open();
    const recorder = new CallRecorder();
    const bound = bindDriver(d, recorder);
    const w = instantiate(bound.imports);
    bound.setMemory(w.memory);
    w.setup(POLICY_CODES.expandable, DEVICE_IMPORTED, 0, d.memGetInfo().total);
    w.start(0, 0);
    const block = w.policyMalloc(5 * MiB + 12345, 0);
    expect(block).toBeGreaterThanOrEqual(0);
    const model = w.policyBlockAddress(block);
    const real = w.policyBlockDriverAddress(block);
    const bytes = w.policyBlockSize(block);
    if (kind === "host") expect(real, "the driver's address is not the model's").not.toBe(model);
    const written = randomBytes(bytes, 2);
    d.copyFromHost(real, written);

    expect(w.deviceHostReserve(2 * bytes)).toBe(1);
    w.deviceCopyOut(model, bytes, bytes);
    d.memset(real, 0xab, bytes);
    w.deviceCopyIn(bytes, model, bytes);
    const back = new Uint8Array(bytes);
    d.copyToHost(real, back);
    expect(firstDifference(back, written)).toBe(-1);
    w.deviceHostRelease();
    const c = d.counters();
    expect([c.calls.hostReserve, c.calls.copyOut, c.calls.copyIn, c.calls.hostRelease]).toEqual([1, 1, 1, 1]);

    // the simulated device, asked the same, logs the same calls with the same bytes (the
    // differential test compares whole replays this way)
    const sim = instantiate();
    sim.setup(POLICY_CODES.expandable, DEVICE_SIMULATED, 0, d.memGetInfo().total);
    sim.start(0, 0);
    expect(sim.deviceCallLogEnable()).toBe(0);
    const simBlock = sim.policyMalloc(5 * MiB + 12345, 0);
    expect(sim.deviceHostReserve(2 * bytes)).toBe(1);
    sim.deviceCopyOut(sim.policyBlockAddress(simBlock), bytes, bytes);
    sim.deviceCopyIn(bytes, sim.policyBlockAddress(simBlock), bytes);
    sim.deviceHostRelease();
    const n = sim.deviceCallLogCount();
    const simLog = {
      kinds: Array.from(new Uint8Array(sim.memory.buffer, sim.deviceCallLogKinds(), n)),
      bytes: Array.from(new Float64Array(sim.memory.buffer, sim.deviceCallLogBytes(), n)),
    };
    const live = recorder.sequence();
    const named = (kinds: number[]) => kinds.map((k) => DEVICE_CALL_NAMES[k]);
    expect(named(Array.from(live.kinds))).toEqual(named(simLog.kinds));
    expect(Array.from(live.bytes)).toEqual(simLog.bytes);
    expect(named(simLog.kinds).slice(-4)).toEqual(["hostReserve", "copyOut", "copyIn", "hostRelease"]);
    expect(simLog.bytes.slice(-4)).toEqual([2 * bytes, bytes, bytes, 2 * bytes]);
  });
});

describe("the host tier on the simulated device", () => {
  function simulated(policy: "caching" | "expandable"): CoreSimExports {
    const w = instantiate();
    w.setup(POLICY_CODES[policy], DEVICE_SIMULATED, 0, 80 * GiB);
    w.start(0, 0);
    return w;
  }

  it("counts arena bytes, bytes copied each way and their time from the cost model, apart from the allocator's", () => {
    const w = simulated("expandable");
    const a = w.policyMalloc(40 * MiB, 0);
    const va = w.policyBlockAddress(a);
    const allocatorMicros = w.deviceMicros();
    expect(w.deviceHostReserve(GiB)).toBe(1);
    expect([w.deviceHostBytes(), w.deviceHostPeakBytes()]).toEqual([GiB, GiB]);
    expect(w.deviceHostMicros()).toBe(w.costPinMicros(GiB));

    w.deviceCopyOut(va, 0, 40 * MiB);
    w.deviceCopyOut(va + 4096, 40 * MiB, 2 * MiB);
    w.deviceCopyIn(0, va, 40 * MiB);
    expect(w.deviceCalls(COPY_OUT)).toBe(2);
    expect(w.deviceCallBytes(COPY_OUT)).toBe(42 * MiB);
    expect(w.deviceCallBytes(COPY_IN)).toBe(40 * MiB);
    expect(w.deviceCopyOutMicros()).toBeCloseTo(w.costCopyMicros(COPY_OUT, 40 * MiB) + w.costCopyMicros(COPY_OUT, 2 * MiB), 6);
    expect(w.deviceCopyInMicros()).toBeCloseTo(w.costCopyMicros(COPY_IN, 40 * MiB), 6);
    expect(w.deviceMicros(), "the host tier is not charged as allocator time").toBe(allocatorMicros);

    w.deviceHostRelease();
    expect([w.deviceHostBytes(), w.deviceHostPeakBytes()]).toEqual([0, GiB]);
    const pinned = w.deviceHostMicros();
    expect(pinned).toBeGreaterThan(w.costPinMicros(GiB));
    // one at a time: a smaller arena after the release keeps the peak, and is charged its pinning
    expect(w.deviceHostReserve(GiB / 4)).toBe(1);
    expect([w.deviceHostBytes(), w.deviceHostPeakBytes()]).toEqual([GiB / 4, GiB]);
    expect(w.deviceHostMicros()).toBeCloseTo(pinned + w.costPinMicros(GiB / 4), 6);
  });

  it("a copy costs a fixed latency plus bytes over a PCIe-class bandwidth; both ways at once beat one after the other", () => {
    const w = instantiate();
    for (const kind of [COPY_OUT, COPY_IN]) {
      let previous = 0;
      for (const bytes of [4096, 2 * MiB, 64 * MiB, GiB, 8 * GiB]) {
        const us = w.costCopyMicros(kind, bytes);
        expect(us, `${DEVICE_CALL_NAMES[kind]} ${bytes}`).toBeGreaterThan(previous);
        previous = us;
      }
      const gbPerS = GiB / w.costCopyMicros(kind, GiB) / 1e3;
      expect(gbPerS, "1 GiB: the bandwidth of a PCIe 5 x16 link").toBeGreaterThan(30);
      expect(gbPerS).toBeLessThan(64);
      expect(w.costCopyMicros(kind, 4096), "a small copy costs its latency, not a 2 MiB copy's time").toBeLessThan(w.costCopyMicros(kind, 2 * MiB) / 2);
    }
    for (const bytes of [2 * MiB, 64 * MiB, GiB]) {
      const both = w.costDuplexCopyMicros(bytes, bytes);
      const apart = w.costCopyMicros(COPY_OUT, bytes) + w.costCopyMicros(COPY_IN, bytes);
      expect(both).toBeLessThan(apart);
      expect(both).toBeGreaterThanOrEqual(Math.max(w.costCopyMicros(COPY_OUT, bytes), w.costCopyMicros(COPY_IN, bytes)));
    }
    // the shared part at the duplex rate, the rest one way
    expect(w.costDuplexCopyMicros(GiB, 64 * MiB)).toBeCloseTo(w.costDuplexCopyMicros(64 * MiB, 64 * MiB) + w.costCopyMicros(COPY_OUT, GiB - 64 * MiB), 6);
    expect(w.costDuplexCopyMicros(0, GiB)).toBe(w.costCopyMicros(COPY_IN, GiB));
    // pinning grows with the arena: a few hundred milliseconds a GiB on a PCIe host
    expect(w.costPinMicros(GiB / 4)).toBeLessThan(w.costPinMicros(GiB));
    expect(w.costPinMicros(GiB)).toBeLessThan(w.costPinMicros(4 * GiB));
    expect(w.costPinMicros(GiB) / 1e3).toBeGreaterThan(100);
    expect(w.costPinMicros(GiB) / 1e3).toBeLessThan(2000);
  });

  it("asserts what the live driver refuses", () => {
    const cases: Array<[string, (w: CoreSimExports, va: number, block: number) => void, RegExp]> = [
      ["a copy before the arena", (w, va) => w.deviceCopyOut(va, 0, MiB), /copyOut: no host arena is reserved/],
      ["a copy past the arena", (w, va) => (w.deviceHostReserve(4 * MiB), w.deviceCopyIn(3 * MiB, va, MiB + 1)), /copyIn: the range runs past the host arena/],
      ["a second arena", (w) => (w.deviceHostReserve(MiB), w.deviceHostReserve(MiB)), /already holds its host arena/],
      ["a release after the release", (w) => (w.deviceHostReserve(MiB), w.deviceHostRelease(), w.deviceHostRelease()), /hostRelease: no host arena is reserved/],
      ["a release without an arena", (w) => w.deviceHostRelease(), /hostRelease: no host arena is reserved/],
      ["a range that was never mapped", (w, va) => (w.deviceHostReserve(GiB), w.deviceCopyOut(va + 64 * MiB, 0, MiB)), /copyOut: device range not mapped with access/],
      ["a range past its mappings", (w, va) => (w.deviceHostReserve(GiB), w.deviceCopyOut(va, 0, 64 * MiB)), /copyOut: device range not mapped with access/],
      [
        "a range whose mapping is gone",
        (w, va, block) => {
          w.deviceHostReserve(GiB);
          w.policyFree(block);
          w.policyEmptyCache();
          w.deviceCopyOut(va, 0, MiB);
        },
        /copyOut: device range not mapped with access/,
      ],
    ];
    for (const [what, call, why] of cases) {
      const w = simulated("expandable");
      const block = w.policyMalloc(20 * MiB, 0);
      expect(block, what).toBeGreaterThanOrEqual(0);
      expect(() => call(w, w.policyBlockAddress(block), block), what).toThrow(why);
    }
  });

  it("copies from a cudaMalloc'd range (the caching allocator's segments) are allowed", () => {
    const w = simulated("caching");
    const a = w.policyMalloc(30 * MiB, 0);
    expect(w.deviceHostReserve(64 * MiB)).toBe(1);
    w.deviceCopyOut(w.policyBlockAddress(a), 0, 30 * MiB);
    w.deviceCopyIn(0, w.policyBlockAddress(a) + 1, 30 * MiB - 1);
    expect([w.deviceCalls(COPY_OUT), w.deviceCalls(COPY_IN)]).toEqual([1, 1]);
  });
});
