// Fault injection on every call kind: a seeded random workload runs while every Nth call of one
// kind fails as the driver would. A JS model records only what succeeded; after every step the
// driver's live counts and bytes must equal the model's, and its tables must keep their
// invariants. So a failed call, real or injected, leaves the driver's tables exact.
import { describe, expect, it } from "vitest";

import { CALL_KINDS, type CallKind, DeviceError, type Driver, OOM, openDriver } from "@lakebed/native-cuda";

import { Rng } from "../../../test/support/random.js";

interface Model {
  handles: Map<number, { bytes: number; released: boolean; mappings: number }>;
  reservations: Map<number, { bytes: number; mapped: Array<{ va: number; bytes: number; handle: number; access: boolean }> }>;
  mallocs: Map<number, number>;
  /** the host tier's arena: its bytes, 0 when none is held */
  arenaBytes: number;
}

function expectedCounts(m: Model) {
  let liveHandles = 0, handleBytes = 0, physicalBytes = 0, liveMappings = 0, mappedBytes = 0;
  let reservedBytes = 0, mallocBytes = 0;
  for (const h of m.handles.values()) {
    if (!h.released) {
      liveHandles++;
      handleBytes += h.bytes;
    }
    physicalBytes += h.bytes;
  }
  for (const r of m.reservations.values()) {
    reservedBytes += r.bytes;
    for (const x of r.mapped) {
      liveMappings++;
      mappedBytes += x.bytes;
    }
  }
  for (const b of m.mallocs.values()) {
    mallocBytes += b;
    physicalBytes += b;
  }
  return {
    liveHandles, handleBytes, physicalBytes, liveMappings, mappedBytes,
    liveReservations: m.reservations.size, reservedBytes, liveMallocs: m.mallocs.size, mallocBytes,
    hostArenaBytes: m.arenaBytes,
  };
}

/** Runs one call; returns true if it succeeded. Injected and driver failures are expected. */
function attempt(f: () => number | void): boolean {
  try {
    return f() !== OOM;
  } catch (err) {
    expect(err).toBeInstanceOf(DeviceError);
    expect(["INJECTED", "DRIVER", "OUT_OF_MEMORY"]).toContain((err as DeviceError).code);
    return false;
  }
}

function workload(d: Driver, seed: number, steps: number): { failures: number } {
  const rng = new Rng(seed);
  const rand = () => rng.unit();
  const G = d.granularity();
  const m: Model = { handles: new Map(), reservations: new Map(), mallocs: new Map(), arenaBytes: 0 };
  let failures = 0;
  const buf = new Uint8Array(256);
  for (let step = 0; step < steps; step++) {
    const liveHandles = [...m.handles.entries()].filter(([, h]) => !h.released);
    const reservations = [...m.reservations.entries()];
    const op = rng.pick(["create", "create", "release", "reserve", "free", "map", "map", "access", "unmap",
      "malloc", "mfree", "copy", "pattern", "info", "arena", "tier", "tier"] as const);
    let ok = true;
    switch (op) {
      case "create": {
        const bytes = G * (1 + Math.floor(rand() * 3));
        const h = d.memCreate(bytes);
        ok = h !== OOM;
        if (ok) m.handles.set(h, { bytes, released: false, mappings: 0 });
        break;
      }
      case "release": {
        if (liveHandles.length === 0) continue;
        const [id, h] = rng.pick(liveHandles);
        ok = attempt(() => d.memRelease(id));
        if (ok) {
          h.released = true;
          if (h.mappings === 0) m.handles.delete(id);
        }
        break;
      }
      case "reserve": {
        const bytes = G * (1 + Math.floor(rand() * 6));
        let va = OOM;
        ok = attempt(() => (va = d.addressReserve(bytes)));
        if (ok) m.reservations.set(va, { bytes, mapped: [] });
        break;
      }
      case "free": {
        const empty = reservations.filter(([, r]) => r.mapped.length === 0);
        if (empty.length === 0) continue;
        const [va, r] = rng.pick(empty);
        ok = attempt(() => d.addressFree(va, r.bytes));
        if (ok) m.reservations.delete(va);
        break;
      }
      case "map": {
        // stitch: the next free slot of a reservation gets a whole handle, if it fits
        if (liveHandles.length === 0 || reservations.length === 0) continue;
        const [va, r] = rng.pick(reservations);
        const used = r.mapped.reduce((s, x) => s + x.bytes, 0);
        const [id, h] = rng.pick(liveHandles);
        const bytes = h.bytes;
        if (bytes > r.bytes - used) continue;
        ok = attempt(() => d.map(va + used, bytes, id));
        if (ok) {
          r.mapped.push({ va: va + used, bytes, handle: id, access: false });
          h.mappings++;
        }
        break;
      }
      case "access":
      case "unmap": {
        const mapped = reservations.filter(([, r]) => r.mapped.length > 0);
        if (mapped.length === 0) continue;
        const [va, r] = rng.pick(mapped);
        const bytes = r.mapped.reduce((s, x) => s + x.bytes, 0);
        if (op === "access") {
          ok = attempt(() => d.setAccess(va, bytes));
          if (ok) for (const x of r.mapped) x.access = true;
        } else {
          ok = attempt(() => d.unmap(va, bytes));
          if (ok) {
            for (const x of r.mapped) {
              const h = m.handles.get(x.handle)!;
              h.mappings--;
              if (h.released && h.mappings === 0) m.handles.delete(x.handle);
            }
            r.mapped = [];
          }
        }
        break;
      }
      case "malloc": {
        const bytes = 1 + Math.floor(rand() * 3 * G);
        const va = d.malloc(bytes);
        ok = va !== OOM;
        if (ok) m.mallocs.set(va, bytes);
        break;
      }
      case "mfree": {
        if (m.mallocs.size === 0) continue;
        const va = rng.pick([...m.mallocs.keys()]);
        ok = attempt(() => d.free(va));
        if (ok) m.mallocs.delete(va);
        break;
      }
      case "arena": {
        // the host tier's one arena: pinned when none is held, else given back
        if (m.arenaBytes === 0) {
          const bytes = G * (1 + Math.floor(rand() * 4));
          ok = attempt(() => (d.hostReserve(bytes) ? 0 : OOM));
          if (ok) m.arenaBytes = bytes;
        } else {
          ok = attempt(() => d.hostRelease());
          if (ok) m.arenaBytes = 0;
        }
        break;
      }
      case "copy":
      case "tier":
      case "pattern": {
        // a range that maps one chunk twice aliases itself: a pattern written at one place is
        // overwritten at the other, so pattern checks take ranges with distinct chunks only
        const distinct = (r: { mapped: Array<{ handle: number }> }) =>
          op === "copy" || new Set(r.mapped.map((x) => x.handle)).size === r.mapped.length;
        const accessible = reservations.filter(
          ([, r]) => r.mapped.length > 0 && r.mapped.every((x) => x.access) && distinct(r),
        );
        const mallocs = [...m.mallocs.entries()].filter(([, b]) => b >= buf.length);
        const targets: Array<[number, number]> = [
          ...accessible.map(([va, r]): [number, number] => [va, r.mapped.reduce((s, x) => s + x.bytes, 0)]),
          ...mallocs,
        ];
        if (targets.length === 0) continue;
        const [va, bytes] = rng.pick(targets);
        if (op === "tier") {
          // a range out to the arena and back: the bytes written before must read back after
          if (m.arenaBytes === 0) continue;
          const n = Math.min(bytes, m.arenaBytes, 4096);
          const offset = Math.floor(rand() * (m.arenaBytes - n + 1));
          const mark = new Uint8Array(n).fill(step & 0xff);
          ok = attempt(() => d.copyFromHost(va, mark)) && attempt(() => d.copyOut(va, offset, n)) &&
            attempt(() => d.memset(va, 0, n)) && attempt(() => d.copyIn(offset, va, n));
          const back = new Uint8Array(n);
          if (ok) ok = attempt(() => d.copyToHost(va, back));
          if (ok) expect(back.every((b) => b === (step & 0xff))).toBe(true);
        } else if (op === "copy") {
          ok = attempt(() => d.copyFromHost(va, buf)) && attempt(() => d.copyToHost(va, buf)) &&
            attempt(() => d.memset(va, 1, buf.length));
        } else {
          ok = attempt(() => d.fillPattern(va, bytes, step));
          // a fill that did not fail must read back intact
          if (ok) {
            let bad = -1;
            ok = attempt(() => {
              bad = d.checkPattern(va, bytes, step);
            });
            if (ok) expect(bad).toBe(0);
          }
        }
        break;
      }
      case "info":
        ok = attempt(() => {
          d.memGetInfo();
        });
        break;
    }
    if (!ok) failures++;
    expect(d.isValid()).toBeNull();
    expect(d.counters()).toMatchObject(expectedCounts(m));
  }
  return { failures };
}

const OOM_SHAPED = new Set<CallKind>(["memCreate", "addressReserve", "malloc", "hostReserve"]);

describe("fault injection", () => {
  for (const call of CALL_KINDS) {
    it(`every 3rd ${call} fails and the tables stay exact`, () => {
      const d = openDriver("host", { capacity: 64 << 20, failEvery: { call, n: 3 } });
      const { failures } = workload(d, 1234 + CALL_KINDS.indexOf(call), 400);
      const c = d.counters();
      // injection really happened for this kind, and only for it
      expect(c.injected[call]).toBeGreaterThan(0);
      expect(c.injected[call]).toBe(Math.floor(countValid(d, call) / 3));
      for (const other of CALL_KINDS) if (other !== call) expect(c.injected[other]).toBe(0);
      expect(failures).toBeGreaterThanOrEqual(c.injected[call]);
      // every other failure is an OOM at the capacity (memCreate/malloc): the workload makes no
      // invalid calls. Injected faults of the OOM-shaped kinds count as OOMs too.
      for (const k of CALL_KINDS) {
        const capacityOoms = c.ooms[k] - (OOM_SHAPED.has(k) ? c.injected[k] : 0);
        expect(c.failures[k] - c.injected[k]).toBe(capacityOoms);
        if (k !== "memCreate" && k !== "malloc") expect(capacityOoms).toBe(0);
      }
      const report = d.teardown();
      expect(report.errors).toEqual([]);
      expect(d.leakReport().clean).toBe(true);
      expect(d.counters()).toMatchObject({ liveHandles: 0, liveReservations: 0, liveMappings: 0, liveMallocs: 0, physicalBytes: 0 });
    });
  }

  it("many kinds failing at once, through the per-kind table", () => {
    const table: Partial<Record<CallKind, number>> = { memCreate: 4, map: 3, setAccess: 2, unmap: 5, addressReserve: 7, free: 3 };
    const d = openDriver("host", { capacity: 64 << 20, failEvery: table });
    workload(d, 99, 600);
    for (const [call, n] of Object.entries(table)) {
      expect(d.counters().injected[call as CallKind]).toBe(Math.floor(countValid(d, call as CallKind) / n));
    }
    d.teardown();
    expect(d.leakReport().clean).toBe(true);
  });

  it("an injected failure changes nothing: the same call then succeeds", () => {
    const d = openDriver("host", { failEvery: [{ call: "map", n: 1 }] });
    const G = d.granularity();
    const h = d.memCreate(G);
    const va = d.addressReserve(G);
    expect(() => d.map(va, G, h)).toThrow(/injected fault/);
    expect(d.counters()).toMatchObject({ liveMappings: 0 });
    d.failEvery("map", 0);
    d.map(va, G, h);
    expect(d.counters()).toMatchObject({ liveMappings: 1 });
    d.failEvery("memCreate", 1);
    expect(d.memCreate(G)).toBe(OOM); // OOM-shaped, as cuMemCreate on a full device
    expect(d.counters().ooms.memCreate).toBe(1);
    d.teardown();
  });
});

/** Calls of a kind that passed validation, which is what the injector counts: the workload makes
 * only valid calls, so that is all of them. */
function countValid(d: Driver, call: CallKind): number {
  return d.counters().calls[call];
}
