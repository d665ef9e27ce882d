// fillPattern/checkPattern: seeded bytes at the first and last bytes of a range and across every
// granule boundary, so each chunk of a stitched range is written and read back.
import { afterEach, describe, expect, it } from "vitest";

import { type Driver, openDriver } from "@lakebed/native-cuda";

let d: Driver;
afterEach(() => d?.teardown());

function stitch(driver: Driver, chunks: number[], G: number): number {
  const va = driver.addressReserve(chunks.length * G);
  chunks.forEach((h, i) => driver.map(va + i * G, G, h));
  driver.setAccess(va, chunks.length * G);
  return va;
}

describe("check pattern", () => {
  it("reads back what it wrote, and only with the same seed", () => {
    d = openDriver("host");
    const G = d.granularity();
    const chunks = Array.from({ length: 6 }, () => d.memCreate(G));
    const va = stitch(d, chunks, G);
    d.fillPattern(va, 6 * G, 2024);
    expect(d.checkPattern(va, 6 * G, 2024)).toBe(0);
    // 64 bytes at each end and 128 across each of the 5 inner boundaries, all compared
    expect(d.checkPattern(va, 6 * G, 2025)).toBeGreaterThan(500);
  });

  it("proves a stitched range shows its chunks in order", () => {
    d = openDriver("host");
    const G = d.granularity();
    const chunks = Array.from({ length: 4 }, () => d.memCreate(G));
    const first = stitch(d, chunks, G);
    d.fillPattern(first, 4 * G, 11);
    // the same chunks in the same order, through another range: intact
    expect(d.checkPattern(stitch(d, chunks, G), 4 * G, 11)).toBe(0);
    // the same chunks in another order: the pattern no longer lines up
    expect(d.checkPattern(stitch(d, [...chunks].reverse(), G), 4 * G, 11)).toBeGreaterThan(0);
  });

  it("sees a single corrupted byte at a chunk boundary", () => {
    d = openDriver("host");
    const G = d.granularity();
    const va = stitch(d, [d.memCreate(G), d.memCreate(G)], G);
    d.fillPattern(va, 2 * G, 5);
    const byte = new Uint8Array(1);
    d.copyToHost(va + G, byte);
    byte[0] ^= 0xff;
    d.copyFromHost(va + G, byte);
    expect(d.checkPattern(va, 2 * G, 5)).toBe(1);
  });

  it("works on a malloc of any size, down to one byte", () => {
    d = openDriver("host");
    for (const bytes of [1, 100, 129, 5 * 1024 * 1024 + 3]) {
      const va = d.malloc(bytes);
      d.fillPattern(va, bytes, bytes);
      expect(d.checkPattern(va, bytes, bytes)).toBe(0);
      d.memset(va, 0, bytes);
      expect(d.checkPattern(va, bytes, bytes)).toBeGreaterThan(0);
    }
  });

  it("refuses a range that is not accessible", () => {
    d = openDriver("host");
    const G = d.granularity();
    const va = d.addressReserve(2 * G);
    d.map(va, G, d.memCreate(G));
    expect(() => d.fillPattern(va, G, 1)).toThrow(/without access/);
    d.setAccess(va, G);
    expect(() => d.fillPattern(va, 2 * G, 1)).toThrow(/not mapped/);
  });
});
