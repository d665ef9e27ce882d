import fc from "fast-check";
import { MiB, ProgramBuilder, type Op } from "./program.js";
import { edgeSizeArb, requestSizeArb } from "./sizes.js";

/**
 * Patterns that fragment on purpose. Each leaves free memory that cannot serve the next request
 * unless the policy splits, merges, releases or stitches exactly right.
 */

/** Allocate n blocks, free every other one, then ask for blocks a bit larger than the holes. */
export const swissCheeseArb: fc.Arbitrary<Op[]> = fc
  .record({
    count: fc.integer({ min: 2, max: 24 }),
    bytes: requestSizeArb,
    growthPercent: fc.integer({ min: 1, max: 300 }),
    rounds: fc.integer({ min: 1, max: 3 }),
    emptyCacheBetween: fc.boolean(),
  })
  .map((p) => {
    const b = new ProgramBuilder();
    let bytes = p.bytes;
    const kept: number[] = [];
    for (let r = 0; r < p.rounds; r++) {
      const ids = Array.from({ length: p.count }, () => b.alloc(bytes));
      ids.forEach((id, i) => (i % 2 === 0 ? b.free(id) : kept.push(id)));
      if (p.emptyCacheBetween) b.emptyCache();
      bytes = Math.ceil((bytes * (100 + p.growthPercent)) / 100);
    }
    b.freeAll(kept.splice(0, kept.length >> 1));
    for (let i = 0; i < p.count; i++) b.scratch(bytes);
    b.freeAll(kept);
    return b.ops;
  });

/** A growing buffer (dynamic shapes): each new size is a little larger, so no cached block fits. */
export const sawtoothArb: fc.Arbitrary<Op[]> = fc
  .record({
    startBytes: requestSizeArb,
    stepBytes: fc.integer({ min: 1, max: 4 * MiB }),
    count: fc.integer({ min: 2, max: 40 }),
    pinEvery: fc.integer({ min: 0, max: 5 }),
    pinBytes: fc.integer({ min: 1, max: 64 * 1024 }),
  })
  .map((p) => {
    const b = new ProgramBuilder();
    const pins: number[] = [];
    let buf = b.alloc(p.startBytes);
    for (let i = 1; i < p.count; i++) {
      const next = b.alloc(p.startBytes + i * p.stepBytes);
      if (p.pinEvery > 0 && i % p.pinEvery === 0) pins.push(b.alloc(p.pinBytes));
      b.free(buf);
      buf = next;
    }
    b.free(buf);
    b.freeAll(pins);
    return b.ops;
  });

/**
 * Pinning: a long-lived small block carved from each segment right after a big one, so freeing the
 * big block leaves a hole that empty_cache cannot give back; then a request larger than every hole.
 */
export const pinningArb: fc.Arbitrary<Op[]> = fc
  .record({
    bigBytes: fc.array(requestSizeArb, { minLength: 1, maxLength: 12 }),
    smallBytes: edgeSizeArb,
    finalBytes: requestSizeArb,
  })
  .map((p) => {
    const b = new ProgramBuilder();
    const pins: number[] = [];
    for (const n of p.bigBytes) {
      const big = b.alloc(n);
      pins.push(b.alloc(p.smallBytes));
      b.free(big);
    }
    b.emptyCache();
    const total = p.bigBytes.reduce((s, n) => s + n, 0);
    b.scratch(Math.max(p.finalBytes, total));
    b.freeAll(pins);
    b.emptyCache();
    return b.ops;
  });

/** Sizes on every threshold, with random lifetimes and streams: the boundary cases all at once. */
export const thresholdsArb: fc.Arbitrary<Op[]> = fc
  .array(fc.record({ bytes: edgeSizeArb, lifetime: fc.integer({ min: 0, max: 6 }), stream: fc.constantFrom(0, 0, 0, 1) }), {
    minLength: 1,
    maxLength: 60,
  })
  .map((reqs) => {
    const b = new ProgramBuilder();
    const live: { id: number; until: number }[] = [];
    reqs.forEach((r, i) => {
      live.push({ id: b.alloc(r.bytes, r.stream), until: i + r.lifetime });
      for (const l of live.filter((l) => l.until <= i)) {
        b.free(l.id);
        live.splice(live.indexOf(l), 1);
      }
    });
    b.freeAll(live.map((l) => l.id));
    return b.ops;
  });
