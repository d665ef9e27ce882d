// The host driver keeps CUDA's virtual-memory semantics with real memory: separate physical chunks
// stitched into one virtual range are really seen through it.
import { afterEach, describe, expect, it } from "vitest";

import { CALL_KINDS, DeviceError, type Driver, OOM, openDriver } from "@lakebed/native-cuda";

const MiB = 1 << 20;
let open: Driver[] = [];

function host(options = {}): Driver {
  const d = openDriver("host", options);
  open.push(d);
  return d;
}

afterEach(() => {
  for (const d of open) d.teardown();
  open = [];
});

function bytesOf(value: number, length: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

function expectCode(f: () => unknown, code: string, text?: RegExp): void {
  let caught: unknown;
  try {
    f();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(DeviceError);
  expect((caught as DeviceError).code).toBe(code);
  if (text) expect((caught as DeviceError).message).toMatch(text);
}

describe("host driver", () => {
  it("has the H100's 2 MiB granularity", () => {
    const d = host();
    expect(d.granularity()).toBe(2 * MiB);
    expect(d.info()).toMatchObject({ kind: "host", granularity: 2 * MiB, capacity: 0, closed: false });
  });

  it("stitches separate chunks into one range and shows each chunk through it", () => {
    const d = host();
    const G = d.granularity();
    const chunks = [d.memCreate(G), d.memCreate(G), d.memCreate(G), d.memCreate(G)];
    const stitched = d.addressReserve(4 * G);
    // map them out of order, as a stitch of free fragments would
    for (const [slot, chunk] of [[2, chunks[0]], [0, chunks[1]], [3, chunks[2]], [1, chunks[3]]]) {
      d.map(stitched + slot * G, G, chunk);
    }
    d.setAccess(stitched, 4 * G);
    expect(d.isValid()).toBeNull();

    // write a different byte into each slot of the stitched range
    for (let slot = 0; slot < 4; slot++) d.copyFromHost(stitched + slot * G, bytesOf(10 + slot, G));

    // read every chunk through its own, separate mapping
    const own = d.addressReserve(4 * G);
    chunks.forEach((chunk, i) => d.map(own + i * G, G, chunk));
    d.setAccess(own, 4 * G);
    const slotOf = [2, 0, 3, 1];
    for (let i = 0; i < 4; i++) {
      const seen = new Uint8Array(G);
      d.copyToHost(own + i * G, seen);
      expect(seen.every((b) => b === 10 + slotOf[i])).toBe(true);
    }

    // and a write through the second mapping is seen through the stitched one
    d.copyFromHost(own + G, bytesOf(99, 64));
    const back = new Uint8Array(64);
    d.copyToHost(stitched + slotOf[1] * G, back);
    expect(back.every((b) => b === 99)).toBe(true);

    // a copy across a chunk boundary of the stitched range is contiguous
    const across = new Uint8Array(8);
    d.copyToHost(stitched + G - 4, across);
    expect(Array.from(across)).toEqual([10, 10, 10, 10, 11, 11, 11, 11]);
    expect(d.counters()).toMatchObject({ liveHandles: 4, liveReservations: 2, liveMappings: 8 });
    expect(d.isValid()).toBeNull();
  });

  it("maps a larger handle whole, and refuses part of one or an offset, as CUDA does", () => {
    const d = host();
    const G = d.granularity();
    const big = d.memCreate(3 * G);
    const va = d.addressReserve(3 * G);
    d.map(va, 3 * G, big);
    d.setAccess(va, 3 * G);
    d.copyFromHost(va + 2 * G - 8, bytesOf(7, 16)); // across its inner 2 MiB boundary
    const again = d.addressReserve(3 * G);
    d.map(again, 3 * G, big);
    d.setAccess(again, 3 * G);
    const seen = new Uint8Array(16);
    d.copyToHost(again + 2 * G - 8, seen);
    expect(seen.every((b) => b === 7)).toBe(true);
    expectCode(() => d.map(d.addressReserve(2 * G), 2 * G, big), "INVALID", /covers its whole handle: handle \d+ has 6291456 bytes, not 4194304/);
    expectCode(() => d.map(d.addressReserve(G), G, big, G), "INVALID", /offset must be 0/);
    // the part-handle map reached the addon and was refused there; the offset one never left JS
    expect(d.counters().calls.map).toBe(3);
    expect(d.counters().failures.map).toBe(1);
  });

  it("unmap keeps the reservation; access ends with the mapping", () => {
    const d = host();
    const G = d.granularity();
    const [a, b] = [d.memCreate(G), d.memCreate(G)];
    const va = d.addressReserve(2 * G);
    d.map(va, G, a);
    expectCode(() => d.copyFromHost(va, bytesOf(1, 8)), "INVALID", /without access/);
    d.map(va + G, G, b);
    d.setAccess(va, 2 * G);
    d.copyFromHost(va, bytesOf(1, 8));
    expectCode(() => d.unmap(va, G + G / 2), "INVALID");
    d.unmap(va, 2 * G); // one call unmaps both mappings, as cuMemUnmap of a stitched range
    expect(d.counters()).toMatchObject({ liveMappings: 0, liveReservations: 1, liveHandles: 2 });
    expectCode(() => d.copyToHost(va, new Uint8Array(8)), "INVALID", /neither inside a malloc nor mapped/);
    expectCode(() => d.unmap(va, G), "INVALID", /no mapping starts/);
    // the range is still reserved: map the chunks back the other way round
    d.map(va, G, b);
    d.map(va + G, G, a);
    d.setAccess(va, 2 * G);
    const seen = new Uint8Array(8);
    d.copyToHost(va + G, seen);
    expect(seen.every((x) => x === 1)).toBe(true);
    expect(d.isValid()).toBeNull();
  });

  it("refuses overlapping maps, maps outside a reservation and freeing a mapped reservation", () => {
    const d = host();
    const G = d.granularity();
    const h = d.memCreate(G);
    const big = d.memCreate(2 * G);
    const va = d.addressReserve(2 * G);
    d.map(va, G, h);
    expectCode(() => d.map(va, G, h), "INVALID", /overlaps/);
    expectCode(() => d.map(va + G, 2 * G, big), "INVALID", /not inside one reservation/);
    expectCode(() => d.map(va + G, G, big), "INVALID", /covers its whole handle/);
    expectCode(() => d.addressFree(va, 2 * G), "INVALID", /still holds 1 mapping/);
    expectCode(() => d.addressFree(va, G), "INVALID", /has 4194304 bytes/);
    expectCode(() => d.map(va + G, G, 12345), "INVALID", /handle 12345 is not live/);
    d.unmap(va, G);
    d.addressFree(va, 2 * G);
    expectCode(() => d.addressFree(va, 2 * G), "INVALID", /no reservation/);
    expect(d.isValid()).toBeNull();
  });

  it("a released handle lives until its last mapping goes, as in CUDA", () => {
    const d = host();
    const G = d.granularity();
    const h = d.memCreate(G);
    const va = d.addressReserve(G);
    d.map(va, G, h);
    d.setAccess(va, G);
    d.copyFromHost(va, bytesOf(5, 32));
    d.memRelease(h);
    expectCode(() => d.memRelease(h), "INVALID", /not live/);
    expectCode(() => d.map(d.addressReserve(G), G, h), "INVALID", /not live/);
    expect(d.counters()).toMatchObject({ liveHandles: 0, handleBytes: 0, physicalBytes: G });
    const seen = new Uint8Array(32);
    d.copyToHost(va, seen);
    expect(seen.every((b) => b === 5)).toBe(true);
    expect(d.leakReport().handles).toEqual([{ handle: h, bytes: G, mappings: 1, released: true }]);
    d.unmap(va, G);
    expect(d.counters()).toMatchObject({ physicalBytes: 0 });
    expect(d.leakReport().handles).toEqual([]);
    expect(d.isValid()).toBeNull();
  });

  it("handle ids are never reused", () => {
    const d = host();
    const G = d.granularity();
    const first = d.memCreate(G);
    d.memRelease(first);
    const second = d.memCreate(G);
    expect(second).not.toBe(first);
    expectCode(() => d.memRelease(first), "INVALID");
  });

  it("malloc, memset, copies and free", () => {
    const d = host();
    const va = d.malloc(3 * MiB + 5);
    d.memset(va, 0xab, 3 * MiB + 5);
    const tail = new Uint8Array(5);
    d.copyToHost(va + 3 * MiB, tail);
    expect(tail.every((b) => b === 0xab)).toBe(true);
    // any ArrayBufferView works, without a copy
    const words = new Uint32Array([1, 2, 3, 4]);
    d.copyFromHost(va, words);
    const view = new DataView(new ArrayBuffer(16));
    d.copyToHost(va, view);
    expect(view.getUint32(4, true)).toBe(2);
    expectCode(() => d.copyToHost(va + 3 * MiB, new Uint8Array(16)), "INVALID", /neither inside a malloc/);
    expect(d.counters()).toMatchObject({ liveMallocs: 1, mallocBytes: 3 * MiB + 5 });
    d.free(va);
    expectCode(() => d.free(va), "INVALID", /no malloc/);
    expect(d.counters()).toMatchObject({ liveMallocs: 0, mallocBytes: 0, physicalBytes: 0 });
  });

  it("counts every call and every failure by kind", () => {
    const d = host();
    const G = d.granularity();
    const h = d.memCreate(G);
    expectCode(() => d.memRelease(h + 1), "INVALID");
    d.memRelease(h);
    const c = d.counters();
    expect(c.calls.memCreate).toBe(1);
    expect(c.calls.memRelease).toBe(2);
    expect(c.failures.memRelease).toBe(1);
    expect(c.failures.memCreate).toBe(0);
  });

  it("teardown releases everything, newest first, and closes the driver", () => {
    const d = openDriver("host");
    const G = d.granularity();
    const hs = [d.memCreate(G), d.memCreate(2 * G), d.memCreate(G)];
    const va = d.addressReserve(4 * G);
    d.map(va, G, hs[0]);
    d.map(va + G, 2 * G, hs[1]);
    d.setAccess(va, 3 * G);
    d.memRelease(hs[0]); // released but mapped: teardown's unmap frees it
    d.malloc(12345);
    d.addressReserve(G);
    const report = d.teardown();
    expect(report).toEqual({ unmapped: 2, addressesFreed: 2, handlesReleased: 2, mallocsFreed: 1, hostArenaBytes: 0, errors: [] });
    expect(d.counters()).toMatchObject({
      liveHandles: 0,
      liveReservations: 0,
      liveMappings: 0,
      liveMallocs: 0,
      physicalBytes: 0,
      reservedBytes: 0,
      mappedBytes: 0,
    });
    expect(d.leakReport()).toEqual({ clean: true, handles: [], reservations: [], mappings: [], mallocs: [], hostArenaBytes: 0 });
    expect(d.info().closed).toBe(true);
    expectCode(() => d.memCreate(G), "CLOSED");
    expect(d.teardown()).toEqual({ unmapped: 0, addressesFreed: 0, handlesReleased: 0, mallocsFreed: 0, hostArenaBytes: 0, errors: [] });
  });

  it("memGetInfo reports the machine, or the capacity when one is set", () => {
    const free = host().memGetInfo();
    expect(free.total).toBeGreaterThan(0);
    expect(free.free).toBeLessThanOrEqual(free.total);
    const d = host({ capacity: 10 * MiB });
    d.memCreate(4 * MiB);
    expect(d.memGetInfo()).toEqual({ free: 6 * MiB, total: 10 * MiB });
  });
});

describe("out of memory", () => {
  it("memCreate and malloc answer OOM at the capacity, and work again after a release", () => {
    const d = host({ capacity: 8 * MiB });
    const G = d.granularity();
    const hs = [d.memCreate(G), d.memCreate(G), d.memCreate(G)];
    expect(d.malloc(3 * MiB)).toBe(OOM);
    const m = d.malloc(MiB);
    expect(m).toBeGreaterThan(0);
    expect(d.memCreate(G)).toBe(OOM);
    expect(d.memCreate(4 * G)).toBe(OOM);
    expect(d.counters()).toMatchObject({ liveHandles: 3, liveMallocs: 1, physicalBytes: 7 * MiB });
    expect(d.counters().ooms).toMatchObject({ memCreate: 2, malloc: 1 });
    d.memRelease(hs[0]);
    expect(d.memCreate(G)).toBeGreaterThan(0);
    d.free(m);
    expect(d.malloc(2 * MiB)).toBeGreaterThan(0);
    expect(d.isValid()).toBeNull();
  });

  it("a released handle still counts against the capacity while mapped", () => {
    const d = host({ capacity: 4 * MiB });
    const G = d.granularity();
    const h = d.memCreate(2 * G);
    const va = d.addressReserve(2 * G);
    d.map(va, 2 * G, h);
    d.memRelease(h);
    expect(d.memCreate(G)).toBe(OOM);
    d.unmap(va, 2 * G);
    expect(d.memCreate(G)).toBeGreaterThan(0);
  });
});

describe("argument validation", () => {
  it("refuses bad arguments in JS with the call's name", () => {
    const d = host();
    const G = d.granularity();
    expectCode(() => d.memCreate(G + 1), "INVALID", /host\.memCreate: bytes must be a positive multiple of 2097152/);
    expectCode(() => d.memCreate(-G), "INVALID", /memCreate/);
    expectCode(() => d.memCreate(Number.NaN), "INVALID");
    expectCode(() => d.memCreate(2 ** 53), "INVALID");
    expectCode(() => d.addressReserve(G, 3), "INVALID", /power of two/);
    expectCode(() => d.map(G + 1, G, 1), "INVALID", /va must be/);
    expectCode(() => d.map(G, G, 1, 5), "INVALID", /offset must be 0/);
    expectCode(() => d.copyToHost(G, [1, 2] as unknown as Uint8Array), "INVALID", /buffer/);
    expectCode(() => d.copyToHost(G, new Uint8Array(4), 8), "INVALID", /fewer than 8/);
    expectCode(() => d.memset(G, 256, 1), "INVALID", /byte/);
    expectCode(() => d.failEvery("mapp" as "map", 1), "INVALID", /no call kind/);
    expectCode(() => openDriver("tpu" as "host"), "INVALID", /'host' or 'cuda'/);
    expectCode(() => openDriver("host", { failEvery: { nope: 1 } as never }), "INVALID", /no call kind/);
  });
});

describe("the direct calls (a live replay's path: no JS checks, the addon's own)", () => {
  it("refuses every bad argument with a DeviceError naming the driver, the call and what is wrong", () => {
    const d = host();
    const x = d.direct;
    const G = d.granularity();
    const h = x.memCreate(G);
    const va = x.addressReserve(4 * G, 0);
    const before = d.counters();
    // not an integer in [0, 2^53): refused by the addon before DriverCore, the value named
    expectCode(() => x.memCreate(-G), "INVALID", /^host\.memCreate: bytes must be an integer in \[0, 2\^53\), got -2097152$/);
    expectCode(() => x.memCreate(Number.NaN), "INVALID", /bytes .* got NaN$/);
    expectCode(() => x.memCreate(2 ** 53), "INVALID", /host\.memCreate: bytes/);
    expectCode(() => x.memCreate(1.5), "INVALID", /got 1\.5/);
    expectCode(() => x.memCreate("2097152" as unknown as number), "INVALID", /got a string/);
    expectCode(() => x.tryMap(va, G, h, undefined as unknown as number), "INVALID", /host\.map: offset .* got undefined/);
    expectCode(() => x.free(10n as unknown as number), "INVALID", /host\.free: va .* got a bigint/);
    expectCode(() => x.hostReserve(-1), "INVALID", /^host\.hostReserve: bytes must be an integer in \[0, 2\^53\), got -1$/);
    expectCode(() => x.copyOut(va, 0.5, 8), "INVALID", /^host\.copyOut: hostOffset must be an integer .* got 0\.5$/);
    expectCode(() => x.copyIn(0, va, undefined as unknown as number), "INVALID", /^host\.copyIn: bytes .* got undefined$/);
    expect(d.counters().calls).toEqual(before.calls); // none of these reached DriverCore
    // integers the tables refuse: DriverCore, before any driver call
    expectCode(() => x.memCreate(G + 1), "INVALID", /host\.memCreate: .*multiples of 2097152/);
    expectCode(() => x.memCreate(0), "INVALID", /bytes must be positive/);
    expectCode(() => x.addressReserve(G, 3), "INVALID", /host\.addressReserve: alignment must be 0 or a power of two/);
    expectCode(() => x.tryMap(va + 1, G, h, 0), "INVALID", /host\.map: .*multiples/);
    expectCode(() => x.tryMap(va, G, h, G), "INVALID", /host\.map: offset must be 0/);
    expectCode(() => x.tryMap(va, G, h + 7, 0), "INVALID", /host\.map: handle \d+ is not live/);
    expectCode(() => x.tryMap(va, 2 * G, h, 0), "INVALID", /whole handle/);
    expectCode(() => x.tryMap(va + 8 * G, G, h, 0), "INVALID", /not inside one reservation/);
    expectCode(() => x.trySetAccess(va, G), "INVALID", /host\.setAccess: .*no mapping starts/);
    expectCode(() => x.unmap(va, G), "INVALID", /host\.unmap: /);
    expectCode(() => x.addressFree(va, G), "INVALID", /has 8388608 bytes, not 2097152/);
    expectCode(() => x.memRelease(h + 7), "INVALID", /host\.memRelease: handle \d+ is not live/);
    expectCode(() => x.free(va), "INVALID", /host\.free: no malloc starts/);
    expectCode(() => x.copyToHost(va, new Uint8Array(8), 8), "INVALID", /host\.copyToHost: .*neither inside a malloc nor mapped/);
    expectCode(() => x.copyToHost(va, new Uint8Array(4), 8), "INVALID", /fewer than 8/);
    expectCode(() => x.copyFromHost(va, [1] as unknown as Uint8Array, 1), "INVALID", /must be a TypedArray/);
    expectCode(() => x.hostReserve(0), "INVALID", /host\.hostReserve: bytes must be positive/);
    expectCode(() => x.copyOut(va, 0, 8), "INVALID", /host\.copyOut: no host arena is reserved/);
    expectCode(() => x.hostRelease(), "INVALID", /host\.hostRelease: no host arena is reserved/);
    expect(d.isValid()).toBeNull();
    expect(d.counters()).toMatchObject({ liveHandles: 1, liveReservations: 1, liveMappings: 0 });
    // and the same calls with good arguments work
    expect(x.tryMap(va, G, h, 0)).toBe(0);
    expect(x.trySetAccess(va, G)).toBe(0);
    x.copyFromHost(va, new Uint8Array([7, 8]), 2);
    const back = new Uint8Array(2);
    x.copyToHost(va, back, 2);
    expect(Array.from(back)).toEqual([7, 8]);
    x.unmap(va, G);
    x.addressFree(va, 4 * G);
    x.memRelease(h);
    expect(d.leakReport().clean).toBe(true);
  });

  it("tryMap and trySetAccess answer OOM when refused by an injected fault, and throw on a closed driver", () => {
    const d = host();
    const G = d.granularity();
    const x = d.direct;
    const h = x.memCreate(G);
    const va = x.addressReserve(G, 0);
    d.failEvery("map", 1);
    expect(x.tryMap(va, G, h, 0)).toBe(OOM);
    expectCode(() => d.map(va, G, h), "INJECTED"); // the checked API throws for the same refusal
    d.failEvery("map", 0);
    expect(x.tryMap(va, G, h, 0)).toBe(0);
    d.failEvery("setAccess", 1);
    expect(x.trySetAccess(va, G)).toBe(OOM);
    d.failEvery("setAccess", 0);
    expect(d.counters()).toMatchObject({ liveMappings: 1 });
    expect(d.counters().injected).toMatchObject({ map: 2, setAccess: 1 });
    d.teardown();
    expectCode(() => x.tryMap(va, G, h, 0), "CLOSED");
  });

  it("times each call inside the native layer when asked: the whole operation and the driver function", () => {
    const d = host();
    const G = d.granularity();
    const x = d.direct;
    x.memCreate(G); // before timing: not logged
    expect(d.takeCallTimes().kinds.length).toBe(0);
    d.timeCalls(true);
    const h = x.memCreate(G);
    const va = x.addressReserve(G, 0);
    expectCode(() => x.tryMap(va, G, h + 9, 0), "INVALID"); // refused before the driver
    expect(x.tryMap(va, G, h, 0)).toBe(0);
    x.nop(1, 2, 3, 4); // not a device call
    const t = d.takeCallTimes();
    expect(Array.from(t.kinds, (k) => CALL_KINDS[k])).toEqual(["memCreate", "addressReserve", "map", "map"]);
    expect(t.driverNs[2]).toBe(-1);
    for (const i of [0, 1, 3]) {
      expect(t.driverNs[i]).toBeGreaterThan(0);
      expect(t.coreNs[i]).toBeGreaterThanOrEqual(t.driverNs[i]);
    }
    // the clock's own cost is measured (its size is the benchmark's business, not a test's)
    expect(t.clockReadNs).toBeGreaterThan(0);
    expect(d.takeCallTimes().kinds.length).toBe(0); // taken: forgotten
    d.timeCalls(false);
    x.unmap(va, G);
    expect(d.takeCallTimes().kinds.length).toBe(0);
  });
});
