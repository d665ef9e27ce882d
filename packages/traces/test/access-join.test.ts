import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import {
  accessCoverage,
  checkAccessColumns,
  joinAccessRecord,
  parseAccessRecord,
  parseTrace,
  readTrace,
  traceToArrowBytes,
  withAccessRecord,
  UseKind,
  type AccessColumns,
  type Trace,
} from "@lakebed/traces";
import { scratchFolder } from "./fixtures.js";

/**
 * The join of an operator record to an allocator trace (access-join.ts), on a trace small enough to
 * work out by hand: which operator sits where, which blocks it reads and writes, scratch memory,
 * views and allocate-only operators, what cannot be placed, coverage, and the Arrow round trip.
 */
const scratch = scratchFolder("access");
const A = 2 ** 30;

/** Blocks: 0 x (A), 1 w (A+512), 2 scratch inside mm (A+1024), 3 mm's result (A+2048), 4 a workspace mm keeps (A+3072). */
function smallTrace(): Trace {
  const ev = (action: string, addr: number, size: number, time_us: number) => ({ action, addr, size, stream: 0, time_us });
  const json = JSON.stringify({
    segments: [
      {
        address: A, total_size: 2 ** 21, stream: 0, segment_type: "large",
        blocks: [
          { address: A, size: 512, requested_size: 512, state: "inactive" },
          { address: A + 512, size: 512, requested_size: 512, state: "active_allocated" },
          { address: A + 1024, size: 1024, requested_size: 1024, state: "inactive" },
          { address: A + 2048, size: 1024, requested_size: 512, state: "active_allocated" },
          { address: A + 3072, size: 4096, requested_size: 4096, state: "active_allocated" },
          { address: A + 7168, size: 2 ** 21 - 7168, requested_size: 0, state: "inactive" },
        ],
      },
    ],
    device_traces: [[
      ev("segment_alloc", A, 2 ** 21, 100),
      ev("alloc", A, 512, 101), // 1: x, by empty [100, 102]
      ev("alloc", A + 512, 512, 111), // 2: w, by randn [110, 112]
      ev("alloc", A + 1024, 1024, 121), // 3: scratch inside mm [120, 126]
      ev("free_requested", A + 1024, 1024, 122),
      ev("free_completed", A + 1024, 1024, 122),
      ev("alloc", A + 2048, 512, 123), // 6: mm's result
      ev("alloc", A + 3072, 4096, 124), // 7: a workspace mm keeps (the cuBLAS workspace's pattern)
      ev("free_requested", A, 512, 131), // 8: x dropped between operators
      ev("free_completed", A, 512, 131),
    ]],
  });
  return parseTrace(new TextEncoder().encode(json), "small.json");
}

const NAMES = ["aten.empty.memory_format", "aten.randn.default", "aten.mm.default", "aten.add_.Tensor", "aten.view.default", "aten.mul.Tensor", "aten.ones.default"];
const T0 = 90;

/** ops as the recorder writes them: [name, start - T0, duration, flags, (device, role, ptr, nbytes)...] */
function smallRecord(ops?: number[][]): string {
  return JSON.stringify({
    format: "lakebed.access",
    version: 1,
    torch: "2.11.0",
    clock: "unix_us",
    t0_us: T0,
    names: NAMES,
    ops: ops ?? [
      [6, -60, 10, 0, 0, 2, A + 9999, 64], // returned before the trace began (a wrapped ring buffer)
      [0, 10, 2, 0, 0, 2, A, 512],
      [1, 20, 2, 0, 0, 2, A + 512, 512],
      [2, 30, 6, 0, 0, 0, A, 512, 0, 0, A + 512, 512, 0, 2, A + 2048, 512],
      [3, 50, 1, 0, 0, 1, A + 2048, 512, 0, 0, A + 512, 512],
      [4, 60, 1, 1, 0, 0, A + 2048, 512],
      [5, 70, 1, 0, 0, 0, 777, 64, 0, 2, 888, 64],
    ],
  });
}

function joined(record = smallRecord()): AccessColumns {
  const trace = joinAccessRecord(smallTrace(), parseAccessRecord(new TextEncoder().encode(record), "small.access.json"));
  return trace.devices[0].access!;
}

const rows = (a: AccessColumns) =>
  Array.from({ length: a.uses.length }, (_, u) => [a.uses.position[u], a.uses.blockId[u], a.uses.kind[u], a.operatorNames[a.operators.name[a.uses.operator[u]]]]);

describe("joining an operator record to a trace", () => {
  it("places each operator after the alloc events of its results, and names the blocks it touched", () => {
    const a = joined();
    expect(Array.from(a.operators.position)).toEqual([2, 3, 7, 10, 10, 10]);
    expect(Array.from(a.operators.name, (k) => a.operatorNames[k])).toEqual(NAMES.slice(0, 6));
    expect(rows(a)).toEqual([
      [3, 1, UseKind.Write, "aten.randn.default"], // empty writes nothing; randn writes w
      [4, 2, UseKind.Scratch, "aten.mm.default"], // allocated and freed inside mm, right after its alloc
      [7, 0, UseKind.Read, "aten.mm.default"],
      [7, 1, UseKind.Read, "aten.mm.default"],
      [7, 3, UseKind.Write, "aten.mm.default"],
      [10, 3, UseKind.ReadWrite, "aten.add_.Tensor"], // in place; the view after it touches nothing
      [10, 1, UseKind.Read, "aten.add_.Tensor"],
    ]);
    expect(a.join).toEqual({ operatorsRecorded: 7, operatorsBeforeTrace: 1, resultsMatched: 3, resultsUnmatched: 1, tensorsUnresolved: 2 });
    expect(checkAccessColumns(smallTrace().devices[0], a)).toBeNull();
  });

  it("reports coverage in byte-seconds, the kept workspace as not seen, under the operator that allocated it", () => {
    const d = { ...smallTrace().devices[0], access: joined() };
    const c = accessCoverage(d)!;
    // lifetimes in µs to the last event (131): x 30, w 20, scratch 1, result 8, workspace 7
    const total = 512 * 30 + 512 * 20 + 1024 * 1 + 512 * 8 + 4096 * 7;
    expect(c.byteSeconds).toBeCloseTo(total * 1e-6, 12);
    expect(c.touchedShare).toBeCloseTo((512 * 30 + 512 * 20 + 512 * 8) / total, 12);
    expect(c.scratchShare).toBeCloseTo(1024 / total, 12);
    expect(c.knownShare).toBeCloseTo(1 - (4096 * 7) / total, 12);
    expect(c.blocks).toEqual({ touched: 3, scratch: 1, unseen: 1 });
    expect(c.unseen).toEqual([{ allocatedDuring: "aten.mm.default", blocks: 1, bytes: 4096, byteSeconds: expect.closeTo(4096 * 7e-6, 12), share: expect.closeTo((4096 * 7) / total, 12) }]);
    expect(accessCoverage(smallTrace().devices[0])).toBeNull();
  });

  it("takes the last alloc at a result's address during the call: an earlier one there was scratch", () => {
    const json = JSON.stringify({
      segments: [{ address: A, total_size: 2 ** 21, stream: 0, segment_type: "large", blocks: [
        { address: A, size: 512, requested_size: 512, state: "active_allocated" },
        { address: A + 512, size: 2 ** 21 - 512, requested_size: 0, state: "inactive" },
      ] }],
      device_traces: [[
        { action: "segment_alloc", addr: A, size: 2 ** 21, stream: 0, time_us: 100 },
        { action: "alloc", addr: A, size: 512, stream: 0, time_us: 101 },
        { action: "free_requested", addr: A, size: 512, stream: 0, time_us: 102 },
        { action: "free_completed", addr: A, size: 512, stream: 0, time_us: 102 },
        { action: "alloc", addr: A, size: 512, stream: 0, time_us: 103 },
      ]],
    });
    const trace = parseTrace(new TextEncoder().encode(json), "reuse.json");
    const record = smallRecord([[2, 10, 5, 0, 0, 2, A, 512]]);
    const a = joinAccessRecord(trace, parseAccessRecord(new TextEncoder().encode(record), "reuse.access.json")).devices[0].access!;
    expect(rows(a)).toEqual([
      [2, 0, UseKind.Scratch, "aten.mm.default"],
      [5, 1, UseKind.Write, "aten.mm.default"],
    ]);
  });

  it("refuses a record that was not recorded with the trace, and one for a device the trace lacks", () => {
    const stranger = smallRecord([[1, 20, 2, 0, 0, 2, A + 4096, 512]]);
    expect(() => joined(stranger)).toThrow(/^small\.access\.json: none of the 1 results the access record says were allocated is an allocation in small\.json/);
    const otherDevice = smallRecord([[1, 20, 2, 0, 1, 2, A + 512, 512]]);
    expect(() => joined(otherDevice)).toThrow(/^small\.access\.json: the access record has operators on device 1, which small\.json has no trace of$/);
  });

  it("keeps the use events through the Arrow format, and a plain trace stays plain", async () => {
    const file = join(scratch(), "small.access.json.gz");
    writeFileSync(file, gzipSync(smallRecord()));
    const trace = withAccessRecord(smallTrace(), file);
    const arrow = join(scratch(), "small.arrow");
    writeFileSync(arrow, traceToArrowBytes(trace));
    const back = (await readTrace(arrow)).devices[0].access!;
    expect(rows(back)).toEqual(rows(trace.devices[0].access!));
    expect(Array.from(back.operators.startUs)).toEqual(Array.from(trace.devices[0].access!.operators.startUs));
    expect(Array.from(back.operators.endUs)).toEqual(Array.from(trace.devices[0].access!.operators.endUs));
    expect(back.join).toEqual(trace.devices[0].access!.join);
    const plain = join(scratch(), "plain.arrow");
    writeFileSync(plain, traceToArrowBytes(smallTrace()));
    expect("access" in (await readTrace(plain)).devices[0]).toBe(false);
  });

  it("the invariant check catches a use of a block after its free", () => {
    const d = smallTrace().devices[0];
    const a = joined();
    a.uses.position[a.uses.length - 1] = 10; // fine: w is live to the end
    expect(checkAccessColumns(d, a)).toBeNull();
    a.uses.blockId[a.uses.length - 1] = 0; // x was freed at event 8
    expect(checkAccessColumns(d, a)).toBe("INV-USE-3: use 6 at position 10 names block 0, which is not live there");
  });
});

describe("a bad access record is one line naming the file and the operator", () => {
  const bad = (doc: unknown) => () => parseAccessRecord(new TextEncoder().encode(typeof doc === "string" ? doc : JSON.stringify(doc)), "run.access.json");
  const good = JSON.parse(smallRecord());
  it.each([
    ["not JSON", "{", /^run\.access\.json: the access record is not valid JSON: /],
    ["another format", { ...good, format: "chakra" }, /^run\.access\.json: access record: format is "chakra", expected "lakebed\.access"/],
    ["a newer version", { ...good, version: 2 }, /^run\.access\.json: access record: version 2 is not supported/],
    ["a row too short", { ...good, ops: [[0, 1, 2]] }, /^run\.access\.json: access record: operator 0: must be \[name, start, duration, flags\]/],
    ["a name out of range", { ...good, ops: [[0, 1, 2, 0], [99, 1, 2, 0]] }, /^run\.access\.json: access record: operator 1: names operator 99 of 7$/],
    ["a bad role", { ...good, ops: [[0, 1, 2, 0, 0, 5, 4096, 8]] }, /^run\.access\.json: access record: operator 0: tensor 0 has role 5, not 0, 1 or 2$/],
    ["a fraction", { ...good, ops: [[0, 1.5, 2, 0]] }, /^run\.access\.json: access record: operator 0: item 1 is not a whole number$/],
    ["a null storage", { ...good, ops: [[0, 1, 2, 0, 0, 0, 0, 8]] }, /^run\.access\.json: access record: operator 0: tensor 0 has storage 0 of 8 bytes$/],
  ])("%s", (_name, doc, message) => {
    expect(bad(doc)).toThrow(message);
  });
});
