import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SharedPool, HELD, ZERO, CHUNK_BYTES, type PoolFault } from "../packages/api/src/colocate/shared-pool.js";

/**
 * The shared pool of `lakebed colocate` under random programs of tenants (fast-check): claims,
 * releases (at once, or queued as Sirius' kTrainLocalFree), drains, the inference reserve,
 * writable mappings and writes, deduplicated read-only chunks, and exits or crashes. After every
 * step the pool's own walk (INV-POOL-1..5: owners add up to the pool, no chunk writable by two
 * tenants, shared chunks read-only with the right reference counts, no tenant able to read another's
 * data) holds, and the reference counts match a model kept here. Each deliberate mistake the pool
 * can be built with (PoolFault) is caught.
 */
const TENANTS = 4;
const KEYS = 6;
const POOL_CHUNKS = 24;

type Op =
  | { op: "claim"; t: number; n: number; reserve: boolean; write: boolean }
  | { op: "release"; t: number; k: number; queued: boolean }
  | { op: "drain"; t: number }
  | { op: "reserve"; n: number }
  | { op: "unreserve"; n: number }
  | { op: "share"; t: number; key: number }
  | { op: "unshare"; t: number; key: number }
  | { op: "exit"; t: number };

const tenant = fc.integer({ min: 0, max: TENANTS - 1 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("claim" as const), t: tenant, n: fc.integer({ min: 1, max: 6 }), reserve: fc.boolean(), write: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("release" as const), t: tenant, k: fc.integer({ min: 1, max: 6 }), queued: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("drain" as const), t: tenant }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reserve" as const), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("unreserve" as const), n: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("share" as const), t: tenant, key: fc.integer({ min: 0, max: KEYS - 1 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("unshare" as const), t: tenant, key: fc.integer({ min: 0, max: KEYS - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("exit" as const), t: tenant }) },
);

/** Runs a program; returns the first problem seen, or null. */
function runProgram(ops: Op[], fault: PoolFault = "none"): string | null {
  const pool = new SharedPool(POOL_CHUNKS * CHUNK_BYTES, { zeroFill: () => 6 }, fault);
  const held: number[][] = Array.from({ length: TENANTS }, () => []);
  /** the model: which tenants map each key */
  const mappers = new Map<number, Set<number>>();
  for (const [step, o] of ops.entries()) {
    switch (o.op) {
      case "claim": {
        const got = pool.claim(o.t, o.n, o.reserve);
        if (got === null) break;
        for (const c of got) {
          // what the tenant reads before it writes: zeros, or its own data
          if (pool.content[c] !== ZERO && pool.content[c] !== o.t) return `tenant ${o.t} was given chunk ${c} holding ${pool.content[c]}'s data (step ${step})`;
          pool.mapWritable(o.t, c);
          if (o.write) pool.write(o.t, c);
          held[o.t].push(c);
        }
        break;
      }
      case "release": {
        const give = held[o.t].splice(0, o.k);
        for (const c of give) pool.unmap(o.t, c);
        pool.release(o.t, give, o.queued);
        break;
      }
      case "drain":
        pool.drain(o.t);
        break;
      case "reserve":
        pool.reserve(o.n);
        break;
      case "unreserve":
        pool.unreserve(o.n);
        break;
      case "share": {
        const m = mappers.get(o.key) ?? new Set<number>();
        if (m.has(o.t)) break;
        if (pool.mapShared(o.t, o.key) === null) break;
        m.add(o.t);
        mappers.set(o.key, m);
        break;
      }
      case "unshare": {
        if (!mappers.get(o.key)?.has(o.t)) break;
        pool.unmapShared(o.t, o.key);
        mappers.get(o.key)!.delete(o.t);
        break;
      }
      case "exit":
        pool.exit(o.t);
        held[o.t] = [];
        for (const m of mappers.values()) m.delete(o.t);
        break;
    }
    const broken = pool.brokenInvariant();
    if (broken !== 0) return `INV-POOL-${broken} broken after step ${step} (${o.op})`;
    // reference counts as the model counts them: one per tenant mapping the key
    let shared = 0;
    for (const [key, m] of mappers) {
      if (m.size === 0) continue;
      shared++;
      const c = pool.readable([...m][0]).find((x) => pool.content[x] === (1 << 20) + key);
      if (c === undefined || pool.refs[c] !== m.size) return `key ${key}: refs ${c === undefined ? "missing" : pool.refs[c]}, ${m.size} tenants map it (step ${step})`;
    }
    if (pool.sharedChunks !== shared) return `${pool.sharedChunks} shared chunks, the model has ${shared} (step ${step})`;
  }
  // every tenant exits (or crashes): the whole pool is free again
  for (let t = 0; t < TENANTS; t++) pool.exit(t);
  if (pool.freeChunks !== POOL_CHUNKS) return `${POOL_CHUNKS - pool.freeChunks} chunks still owned after every tenant exited`;
  return pool.brokenInvariant() === 0 ? null : `INV-POOL-${pool.brokenInvariant()} broken after every tenant exited`;
}

const program = fc.array(opArb, { minLength: 1, maxLength: 60 });
const SEED = 1616;

describe("the colocate shared pool", () => {
  it("keeps INV-POOL-1..5 and the model's reference counts through any program, exits and crashes included", () => {
    fc.assert(
      fc.property(program, (ops) => {
        expect(runProgram(ops)).toBeNull();
      }),
      { numRuns: 400, seed: SEED },
    );
  });

  it("zero-fills a chunk before it changes owner, and never for its own owner", () => {
    const pool = new SharedPool(2 * CHUNK_BYTES, { zeroFill: () => 6 });
    const [a] = pool.claim(0, 1)!;
    pool.mapWritable(0, a);
    pool.write(0, a);
    pool.unmap(0, a);
    pool.release(0, [a]);
    expect(pool.claim(0, 1)).toEqual([a]); // its own data: nothing to hide from it
    expect(pool.zeroFills).toBe(0);
    pool.release(0, [a]);
    expect(pool.claim(1, 1)).toEqual([a]);
    expect(pool.zeroFills).toBe(1);
    expect(pool.content[a]).toBe(ZERO);
    expect(pool.state[a]).toBe(HELD);
  });

  it("keeps a queued (kTrainLocalFree) chunk from other tenants until its owner's queue drains", () => {
    const pool = new SharedPool(1 * CHUNK_BYTES, { zeroFill: () => 6 });
    const [a] = pool.claim(0, 1)!;
    pool.release(0, [a], true);
    expect(pool.claim(1, 1)).toBeNull();
    expect(pool.drain(0)).toBe(1);
    expect(pool.claim(1, 1)).toEqual([a]);
  });

  it("keeps a shared chunk while any tenant maps it: the publisher's crash does not free it", () => {
    const pool = new SharedPool(4 * CHUNK_BYTES, { zeroFill: () => 6 });
    const c = pool.mapShared(0, 3)!;
    expect(pool.mapShared(1, 3)).toBe(c);
    pool.exit(0);
    expect(pool.refs[c]).toBe(1);
    expect(pool.readable(1)).toContain(c);
    pool.exit(1);
    expect(pool.freeChunks).toBe(4);
  });

  // Each deliberate mistake, seen failing: the same property over the same seeded programs.
  const faults: PoolFault[] = ["skip-zero-fill", "double-unref", "share-writable", "reuse-local-free"];
  for (const fault of faults) {
    it(`catches the broken pool '${fault}'`, () => {
      const found = fc.check(
        fc.property(program, (ops) => runProgram(ops, fault) === null),
        { numRuns: 2000, seed: SEED },
      );
      expect(found.failed, `${fault} was not caught`).toBe(true);
      const problem = runProgram(found.counterexample![0], fault);
      expect(problem).not.toBeNull();
      console.log(`${fault}: caught after ${found.numRuns} programs: ${problem}`);
    });
  }
});
