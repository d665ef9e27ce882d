import { describe, expect, it } from "vitest";
import { HostTierTap, patternByte, type LiveReplayDocument } from "@lakebed/api";
import { openDriver } from "@lakebed/native-cuda";
import { lakebed } from "./support/cli.js";
import { hostAvailable } from "./support/live-drivers.js";

/**
 * Tiering live, through the same Wasm, on the host driver (CI has no GPU; the cuda run is in
 * packages/native-cuda/bench/results/tiering-live-h200.md): pages of live blocks really copied to
 * the pinned arena, unmapped, released, re-created, mapped and copied back, every byte of every
 * copy back compared with what was copied out (--verify-data), the live calls the simulator's call
 * for call, the arena released at teardown; and the serverless shrink of a whole live process.
 *
 * Duration: the host driver's chunks are fresh memfd pages, and every page a copy touches is a
 * first touch; where first touches are slow (15 to 30 ms a 2 MiB copy in this project's Firecracker
 * VMs under load) the 0.75 x replays take 9-25 s each (mlp_compiled: 733 pages moved; llama_lora: 489),
 * the whole file 31 s unloaded; on the GPU, llama_lora takes 3.4-4.6 s with verification.
 */
const access = (name: string) => `test/fixtures/access/${name}.pickle.gz`;
const MiB2 = 2 * 1024 * 1024;

function json<T>(args: string[], timeoutMs = 600_000): { status: number | null; doc: T; stderr: string } {
  const r = lakebed([...args, "--json"], timeoutMs);
  let doc: T;
  try {
    doc = JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`lakebed ${args.join(" ")}: exit ${r.status}, no JSON: ${r.stderr}`);
  }
  return { status: r.status, doc, stderr: r.stderr };
}

/** The smallest capacity lakebed needs without tiering (to 2 MiB), times `share`, floored to 2 MiB. */
function capacityAt(file: string, share: number): number {
  const { doc } = json<{ devices: Array<{ minCapacityBytes: number }> }>(["replay", file, "--policy", "lakebed", "--find-min-capacity"]);
  return Math.floor((share * doc.devices[0].minCapacityBytes) / MiB2) * MiB2;
}

type HostTier = NonNullable<LiveReplayDocument["devices"][number]["hostTier"]> & {
  simulated: { arenaPeakBytes: number; bytesOut: number; bytesIn: number; divergence: unknown };
};

function expectTieringLive(file: string, share: number): void {
  const capacity = capacityAt(file, share);
  const { status, doc, stderr } = json<LiveReplayDocument>(["replay", file, "--policy", "tiering", "--capacity", String(capacity), "--backend", "host", "--verify-data"]);
  expect(status, stderr).toBe(0);
  const d = doc.devices[0];
  const h = d.hostTier as HostTier;
  // pages really moved, each way, and every copy back compared byte for byte
  expect(h.copyOut.calls).toBeGreaterThan(0);
  expect(h.copyIn.calls).toBeGreaterThan(0);
  expect(h.roundTrip).toMatchObject({ roundTrips: h.copyIn.calls, bytesCompared: h.copyIn.bytes, failures: 0 });
  // the simulator made the same calls and moved the same bytes; the device never held more than the capacity
  expect(h.simulated.divergence).toBeNull();
  expect([h.copyOut.bytes, h.copyIn.bytes]).toEqual([h.simulated.bytesOut, h.simulated.bytesIn]);
  expect(h.arenaBytes).toBe(h.simulated.arenaPeakBytes);
  expect(d.tiering!.peakDeviceBytes).toBeLessThanOrEqual(capacity);
  expect(d.tiering!.unservedUses).toBe(0);
  expect(d.ooms).toBe(0);
  // every allocation's pattern intact at its free, those freed with pages on the host included
  expect(d.verifiedAllocations).toBeGreaterThan(0);
  expect(d.verifyFailures).toBe(0);
  // the policy holds its arena to the end; teardown gives it back with everything else
  expect(h.arenaHeldAtEnd).toBe(h.arenaBytes);
  expect(h.arenaLeftAfterTeardown).toBe(0);
  expect(d.leaks).toEqual({ handles: 0, reservations: 0, mappings: 0, mallocs: 0 });
}

describe("--live-shrink-at's usage errors: one line naming the option, exit status 2", () => {
  for (const [name, args] of [
    ["on the simulator", ["--live-shrink-at", "5"]],
    ["at event 0", ["--backend", "host", "--live-shrink-at", "0"]],
    ["at no event", ["--backend", "host", "--live-shrink-at", "soon"]],
  ] as const) {
    it(name, () => {
      const r = lakebed(["replay", "test/fixtures/recorded/exp_oom_cap.pickle.gz", "--policy", "lakebed", ...args]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/--live-shrink-at/);
      expect(r.stdout).toBe("");
    });
  }
});

describe.skipIf(!hostAvailable)("tiering live on the host driver", () => {
  it("mlp_compiled at 0.75 x lakebed's minimum: pages out and back, every byte compared, calls the simulator's", () => {
    expectTieringLive(access("mlp_compiled.def"), 0.75);
  }, 300_000);

  it("llama_lora at 0.75 x lakebed's minimum: the same", () => {
    expectTieringLive(access("llama_lora.exp"), 0.75);
  }, 300_000);

  // a trace recorded mid-run: its start state materialized through tiering first; at 0.96 x, where
  // 69 pages move each way (at 0.75 x, 1,525 copies: minutes where first touches are slow)
  it("gpt2_midrun (starts mid-run) under a capacity: the same", () => {
    expectTieringLive(access("gpt2_midrun.def"), 0.96);
  }, 300_000);

  it("tiering's own serverless shrink, live: every resident page to the host before the event, back on its uses, every byte compared", () => {
    const { status, doc, stderr } = json<LiveReplayDocument>(["replay", access("mlp_compiled.def"), "--policy", "tiering", "--shrink-at", "3", "--backend", "host", "--verify-data"]);
    expect(status, stderr).toBe(0);
    const d = doc.devices[0];
    const h = d.hostTier as HostTier;
    const [s] = h.policyShrinks!;
    // what the policy's own counters say the shrink freed (64 MiB here), moved live in one run of copies
    expect(s.eventIndex).toBe(3);
    expect(s.bytesOut).toBe(d.tiering!.shrink!.freedBytes);
    expect(s.pagesOut * MiB2).toBe(s.bytesOut);
    expect(s.shrinkSeconds).toBeGreaterThan(0);
    expect(s.bytesBack).toBeGreaterThan(0);
    expect(s.bytesBack).toBeLessThanOrEqual(s.bytesOut);
    expect(h.roundTrip).toMatchObject({ roundTrips: h.copyIn.calls, failures: 0 });
    expect(h.simulated.divergence).toBeNull();
    expect(d.verifyFailures).toBe(0);
    expect(h.arenaLeftAfterTeardown).toBe(0);
  }, 120_000);

  // before event 2, where the policy holds 40 MiB (at the peak, the shrink is the GPU run's)
  it("the whole process shrunk and refilled live: every chunk out, released, back at its address, every byte the same", () => {
    const { status, doc, stderr } = json<LiveReplayDocument>(["replay", "test/fixtures/recorded/exp_oom_cap.pickle.gz", "--policy", "lakebed", "--backend", "host", "--verify-data", "--live-shrink-at", "2"]);
    expect(status, stderr).toBe(0);
    const d = doc.devices[0];
    const [s] = d.hostTier!.liveShrinks!;
    expect(s.physicalBytesBefore).toBeGreaterThan(0);
    expect(s.bytesMoved + s.bytesReleasedEmpty + s.mallocBytesResident).toBe(s.physicalBytesBefore);
    expect(s.physicalBytesAfterShrink).toBe(s.mallocBytesResident);
    expect(s.physicalBytesAfterRefill).toBe(s.physicalBytesBefore);
    expect([s.verifiedBytes, s.changedBytes]).toEqual([s.bytesMoved, 0]);
    expect(s.shrinkSeconds).toBeGreaterThan(0);
    // the policy went on with its own handle numbers: same calls as the simulator's, patterns intact
    expect((d.hostTier as HostTier).simulated.divergence).toBeNull();
    expect(d.verifyFailures).toBe(0);
    expect(d.hostTier!.arenaLeftAfterTeardown).toBe(0);
    expect(d.leaks).toEqual({ handles: 0, reservations: 0, mappings: 0, mallocs: 0 });
  });

  it("the whole-process shrink keeps a chunk mapped at two addresses one chunk: copied once, mapped at both again, the same bytes through both", () => {
    const driver = openDriver("host");
    try {
      const tap = new HostTierTap(driver, true);
      const d = tap.direct;
      const va = d.addressReserve(4 * MiB2, 0);
      const aliased = d.memCreate(MiB2);
      for (const at of [va, va + MiB2]) {
        expect(d.tryMap(at, MiB2, aliased, 0)).toBe(0);
        expect(d.trySetAccess(at, MiB2)).toBe(0);
      }
      const plain = d.memCreate(MiB2);
      expect(d.tryMap(va + 2 * MiB2, MiB2, plain, 0)).toBe(0);
      expect(d.trySetAccess(va + 2 * MiB2, MiB2)).toBe(0);
      const noAccess = d.memCreate(MiB2);
      expect(d.tryMap(va + 3 * MiB2, MiB2, noAccess, 0)).toBe(0);
      d.fillPattern(va, MiB2, 5);
      d.fillPattern(va + 2 * MiB2, MiB2, 6);
      const s = tap.shrinkAndRefill(1);
      expect(s.physicalBytesBefore).toBe(3 * MiB2);
      expect([s.chunksMoved, s.bytesMoved, s.chunksReleasedEmpty, s.bytesReleasedEmpty]).toEqual([2, 2 * MiB2, 1, MiB2]);
      expect([s.physicalBytesAfterShrink, s.physicalBytesAfterRefill]).toEqual([0, 3 * MiB2]);
      expect([s.verifiedBytes, s.changedBytes]).toEqual([2 * MiB2, 0]);
      // one chunk again behind both addresses: a write through one is read through the other
      expect(d.checkPattern(va + MiB2, MiB2, 5)).toBe(0);
      driver.memset(va + 10, 0xcd, 1);
      expect(d.checkPattern(va + MiB2, MiB2, 5)).toBe(1);
      expect(d.checkPattern(va + 2 * MiB2, MiB2, 6)).toBe(0);
      const held = driver.leakReport();
      expect(held.handles.filter((h) => !h.released).map((h) => h.mappings).sort()).toEqual([1, 1, 2]);
      // the policy's handle numbers still name the chunks: releasing them through the tap works
      for (const at of [va, va + MiB2, va + 2 * MiB2, va + 3 * MiB2]) d.unmap(at, MiB2);
      for (const h of [aliased, plain, noAccess]) d.memRelease(h);
      expect(driver.counters().physicalBytes).toBe(0);
    } finally {
      driver.teardown();
    }
    expect(driver.leakReport().clean).toBe(true);
  });

  it("the round-trip check fails where a page comes back changed, from another slot, or at another address", () => {
    const driver = openDriver("host");
    try {
      const tap = new HostTierTap(driver, true);
      const d = tap.direct;
      const va = d.addressReserve(2 * MiB2, 0);
      const chunk = (at: number) => {
        const h = d.memCreate(MiB2);
        expect(d.tryMap(at, MiB2, h, 0)).toBe(0);
        expect(d.trySetAccess(at, MiB2)).toBe(0);
        return h;
      };
      const out = (at: number, h: number, offset: number) => {
        d.copyOut(at, offset, MiB2);
        d.unmap(at, MiB2);
        d.memRelease(h);
      };
      expect(d.hostReserve(4 * MiB2)).toBe(0);
      let a = chunk(va);
      let b = chunk(va + MiB2);
      d.fillPattern(va, MiB2, 1);
      d.fillPattern(va + MiB2, MiB2, 2);
      out(va, a, 0);
      out(va + MiB2, b, MiB2);
      // a brought back from b's slot: caught by its address
      a = chunk(va);
      d.copyIn(MiB2, va, MiB2);
      expect(tap.roundTrip.failures).toBe(1);
      expect(tap.roundTrip.firstFailure).toMatch(/its bytes left from/);
      // b back from its own slot: every byte the same
      b = chunk(va + MiB2);
      d.copyIn(MiB2, va + MiB2, MiB2);
      expect(tap.roundTrip.failures).toBe(1);
      // a's slot overwritten behind the tap's back (another page copied there), then copied in: caught by its bytes
      driver.copyOut(va + MiB2, 0, MiB2);
      d.copyIn(0, va, MiB2);
      expect(tap.roundTrip.failures).toBe(2);
      expect(tap.roundTrip.roundTrips).toBe(3);
      // a byte of b changed inside its first probe: the free's check sees it on the device, and
      // again, from the bytes its page left with, once the page is on the host
      driver.memset(va + MiB2 + 10, 0xab, 1);
      expect(d.checkPattern(va + MiB2, MiB2, 2)).toBe(1);
      out(va + MiB2, b, MiB2);
      expect(d.checkPattern(va + MiB2, MiB2, 2)).toBe(1);
      expect(tap.roundTrip.checksWithPagesOnHost).toBe(1);
    } finally {
      driver.teardown();
    }
  });

  it("the partial check's pattern is native-cuda's (pattern.h): a filled range reads back equal", () => {
    const driver = openDriver("host");
    try {
      const va = driver.addressReserve(MiB2);
      const h = driver.memCreate(MiB2);
      driver.map(va, MiB2, h);
      driver.setAccess(va, MiB2);
      driver.fillPattern(va, MiB2, 77);
      const head = new Uint8Array(64);
      driver.copyToHost(va, head);
      expect(Array.from(head)).toEqual(Array.from({ length: 64 }, (_, i) => patternByte(77, i)));
    } finally {
      driver.teardown();
    }
  });
});
