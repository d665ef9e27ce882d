import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Action, checkAccessColumns, joinAccessRecord, parseAccessRecord, UseKind, type DeviceTrace, type Trace } from "@lakebed/traces";

/**
 * The join recovers exactly what a program did. A generated program runs operators over a small
 * address space, so addresses are reused all the time (the caching allocator's way): each operator
 * reads and mutates live tensors, allocates and frees scratch memory (often at the address its
 * result then takes), allocates results, sometimes keeps a workspace no tensor names; tensors are
 * dropped between operators. The program writes the allocator trace and the operator record, the
 * record's clock off by up to 1 µs from the trace's, and leaves more than that skew and the clock
 * slack (2 µs) between operators, as the host's own work between two calls does. The join must give every
 * operator the position the program knows and exactly the uses it made.
 */
const SEED = Number(process.env.LAKEBED_SEED ?? 20261202);
const BASE = 2 ** 32;
const NAMES = ["aten.op.default"];

interface Program {
  trace: Trace;
  record: string;
  positions: number[];
  /** [position, block, kind, operator] */
  uses: number[][];
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function program(seed: number, operators: number): Program {
  const rnd = mulberry32(seed);
  const pick = (n: number) => Math.floor(rnd() * n);
  const ev: { action: Action; addr: number; size: number; time: number; block: number }[] = [];
  const free = Array.from({ length: 12 }, (_, k) => BASE + 4096 * k);
  const live = new Map<number, { block: number; size: number }>();
  let nextBlock = 0;
  let t = 1_000_000;
  const t0 = t;
  const alloc = () => {
    const i = rnd() < 0.7 ? free.length - 1 : pick(free.length); // the most recently freed address, mostly
    const addr = free.splice(i, 1)[0];
    const size = 512 * (1 + pick(8));
    const block = nextBlock++;
    ev.push({ action: Action.Alloc, addr, size, time: t++, block });
    live.set(addr, { block, size });
    return { addr, size, block, index: ev.length - 1 };
  };
  const release = (addr: number) => {
    const { block, size } = live.get(addr)!;
    ev.push({ action: Action.FreeRequested, addr, size, time: t, block });
    ev.push({ action: Action.FreeCompleted, addr, size, time: t++, block });
    live.delete(addr);
    free.push(addr);
  };
  const ops: number[][] = [];
  const positions: number[] = [];
  const uses: number[][] = [];
  for (let k = 0; k < operators; k++) {
    for (let d = pick(3); d > 0 && live.size > 0; d--) release([...live.keys()][pick(live.size)]);
    t += 4;
    const start = t++;
    const firstOwn = ev.length;
    const touched: number[] = [];
    const expected = new Map<number, number>();
    for (const addr of [...live.keys()].filter(() => rnd() < 0.3)) {
      const mutated = rnd() < 0.3;
      touched.push(0, mutated ? 1 : 0, addr, live.get(addr)!.size);
      expected.set(live.get(addr)!.block, mutated ? UseKind.ReadWrite : UseKind.Read);
    }
    if (touched.length === 0 && live.size > 0) {
      // the recorder keeps only operators that name a tensor: read one when none was picked
      const [addr, { block, size }] = [...live][0];
      touched.push(0, 0, addr, size);
      expected.set(block, UseKind.Read);
    }
    for (let s = pick(3); s > 0 && free.length > 0; s--) {
      const scratch = alloc();
      release(scratch.addr);
      uses.push([scratch.index + 1, scratch.block, UseKind.Scratch, k]);
    }
    let position = firstOwn;
    for (let r = touched.length === 0 ? 1 : pick(3); r > 0 && free.length > 0; r--) {
      const result = alloc();
      touched.push(0, 2, result.addr, result.size);
      expected.set(result.block, UseKind.Write);
      position = result.index + 1;
    }
    if (rnd() < 0.1 && free.length > 0) alloc(); // a workspace the operator keeps: no use
    const end = t;
    t += 4; // the host's work between two calls (tens of µs in Python) outlasts the clock slack and skew
    const skew = pick(3) - 1; // the record's clock against the trace's, in µs
    ops.push([0, start + skew - t0, end - start, 0, ...touched]);
    positions.push(position);
    for (const [block, kind] of expected) uses.push([position, block, kind, k]);
  }
  const n = ev.length;
  const device: DeviceTrace = {
    device: 0,
    events: {
      length: n,
      action: Uint8Array.from(ev, (e) => e.action),
      addr: Float64Array.from(ev, (e) => e.addr),
      size: Float64Array.from(ev, (e) => e.size),
      stream: new Uint32Array(n),
      timeUs: Float64Array.from(ev, (e) => e.time),
      blockId: Int32Array.from(ev, (e) => (e.action === Action.Alloc || e.action === Action.FreeRequested || e.action === Action.FreeCompleted ? e.block : -1)),
    },
    streams: [0n],
    initialState: [],
    finalState: [],
    complete: true,
    initialLiveBlocks: 0,
    privatePools: [],
  };
  const trace: Trace = { file: "program.json", format: "json", gzip: false, allocatorSettings: null, devices: [device], legacy: false, annotations: [] };
  const record = JSON.stringify({ format: "lakebed.access", version: 1, clock: "unix_us", t0_us: t0, names: NAMES, ops });
  return { trace, record, positions, uses };
}

const byPosition = (a: number[], b: number[]) => a[0] - b[0] || a[1] - b[1];

describe("the join on generated programs", () => {
  it("gives every operator its position and exactly the uses it made", () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 60 }), (seed, operators) => {
        const p = program(seed, operators);
        const results = JSON.parse(p.record).ops.reduce((n: number, op: number[]) => n + op.filter((_, i) => i >= 4 && (i - 4) % 4 === 1 && op[i] === 2).length, 0);
        const joined = joinAccessRecord(p.trace, parseAccessRecord(new TextEncoder().encode(p.record), "program.access.json"));
        const a = joined.devices[0].access!;
        expect(checkAccessColumns(joined.devices[0], a)).toBeNull();
        expect(Array.from(a.operators.position)).toEqual(p.positions);
        const got = Array.from({ length: a.uses.length }, (_, u) => [a.uses.position[u], a.uses.blockId[u], a.uses.kind[u], a.uses.operator[u]]);
        expect(got.sort(byPosition)).toEqual(p.uses.sort(byPosition));
        expect(a.join).toEqual({ operatorsRecorded: operators, operatorsBeforeTrace: 0, resultsMatched: results, resultsUnmatched: 0, tensorsUnresolved: 0 });
      }),
      { numRuns: 200, seed: SEED },
    );
  });
});
