import { describe, expect, it } from "vitest";
import { createRequire } from "node:module";
import type * as Arrow from "apache-arrow";
import { ImportInternalError, parseTrace, traceToArrowBytes, TraceError, type ImportLimits, type Trace } from "@lakebed/traces";
import { PickleWriter } from "./pickle-writer.js";

/**
 * A hostile Arrow file meets the importer's stated limits as a hostile snapshot does: one line
 * naming the file, the limit, the value found and the option, before the work it asks for. The
 * Arrow-only dimensions (fields in the schema, entries in a dictionary) and the snapshot's (devices,
 * streams, segments, blocks per segment, values, nesting) in its lakebed.trace metadata; and a
 * declared length past what the file holds, or a body cut short, is refused in words.
 */
const A = createRequire(import.meta.url)("apache-arrow") as typeof Arrow;
const MiB = 1024 * 1024;

/** A small valid trace: two streams, a segment each, an allocation each, freed. */
function sampleTrace(): Trace {
  const w = new PickleWriter().proto(4);
  const entry = (action: string, addr: number, size: number, stream: number) => (x: PickleWriter) =>
    x.dict([
      ["action", (v) => v.str(action)],
      ["addr", (v) => v.int(addr)],
      ["size", (v) => v.int(size)],
      ["stream", (v) => v.int(stream)],
      ["frames", (v) => v.list([])],
    ]);
  const run = (stream: number, addr: number) => [
    entry("segment_alloc", addr, 2 * MiB, stream),
    entry("alloc", addr, 512, stream),
    entry("free_requested", addr, 512, stream),
    entry("free_completed", addr, 512, stream),
  ];
  const segment = (addr: number, stream: number) => (x: PickleWriter) =>
    x.dict([
      ["device", (v) => v.int(0)],
      ["address", (v) => v.int(addr)],
      ["total_size", (v) => v.int(2 * MiB)],
      ["stream", (v) => v.int(stream)],
      ["segment_type", (v) => v.str("small")],
      ["blocks", (v) => v.list([(b) => b.dict([["address", (n) => n.int(addr)], ["size", (n) => n.int(2 * MiB)], ["requested_size", (n) => n.int(512)], ["state", (n) => n.str("inactive")]])])],
    ]);
  w.dict([
    ["segments", (x) => x.list([segment(2 * MiB, 7), segment(8 * MiB, 9)])],
    ["device_traces", (x) => x.list([(d) => d.list([...run(7, 2 * MiB), ...run(9, 8 * MiB)])])],
  ]);
  return parseTrace(w.stop().toBytes(), "sample.pickle");
}

const sample = sampleTrace();
const sampleArrow = traceToArrowBytes(sample);

/** The sample as an Arrow table, rewritten with other fields, columns or metadata. */
function rewrite(edit: (fields: Arrow.Field[], children: Arrow.Data[], metadata: Map<string, string>) => void): Uint8Array {
  const table = A.tableFromIPC(sampleArrow);
  const fields = [...table.schema.fields];
  const children = [...table.batches[0].data.children];
  const metadata = new Map(table.schema.metadata);
  edit(fields, children, metadata);
  const schema = new A.Schema(fields, metadata);
  const struct = A.makeData({ type: new A.Struct(fields), length: table.numRows, nullCount: 0, children });
  return A.tableToIPC(new A.Table(schema, [new A.RecordBatch(schema, struct)]), "file");
}

/** The sample with its lakebed.trace metadata changed (the JSON as an object, or its text). */
function withMeta(edit: (meta: Record<string, any>) => void | string): Uint8Array {
  return rewrite((_f, _c, metadata) => {
    const meta = JSON.parse(metadata.get("lakebed.trace")!);
    const text = edit(meta);
    metadata.set("lakebed.trace", typeof text === "string" ? text : JSON.stringify(meta));
  });
}

function refusal(file: string, bytes: Uint8Array, limits: Partial<ImportLimits> = {}): string {
  let error: unknown;
  const started = performance.now();
  try {
    parseTrace(bytes, file, { limits });
  } catch (e) {
    error = e;
  }
  expect(performance.now() - started).toBeLessThan(5_000);
  expect(error).toBeInstanceOf(TraceError);
  const message = (error as TraceError).message;
  expect(message.startsWith(`${file}: `)).toBe(true);
  expect(message).not.toMatch(/\n|undefined|intermediate value|\[object /);
  return message.slice(file.length + 2);
}

describe("the stated limits hold for Arrow files", () => {
  it("the sample is read back whole under the defaults", () => {
    expect(parseTrace(sampleArrow, "sample.arrow").devices[0].events.length).toBe(sample.devices[0].events.length);
  });

  it("columns: a schema of more fields than the limit, before arrow-js builds them", () => {
    const wide = rewrite((fields, children) => {
      for (let c = 0; c < 60; c++) {
        fields.push(new A.Field(`extra${c}`, new A.Int8(), false));
        children.push(A.makeData({ type: new A.Int8(), length: children[0].length, data: new Int8Array(children[0].length) }));
      }
    });
    expect(refusal("wide.arrow", wide)).toBe("67 columns exceed the limit of 64 columns in an Arrow schema (fields at any depth) (raise it with --limits columns:N)");
    expect(parseTrace(wide, "wide.arrow", { limits: { columns: 67 } }).devices[0].events.length).toBe(8);
  });

  it("dictionaryEntries: an action dictionary of more entries than the limit", () => {
    const names = ["alloc", "free_requested", "free_completed", "segment_alloc", "segment_free", "segment_map", "segment_unmap", "oom", "snapshot", "other"];
    const big = rewrite((fields, children) => {
      const i = fields.findIndex((f) => f.name === "action");
      const type = new A.Dictionary(new A.Utf8(), new A.Int16(), 0, false);
      const old = children[i].values as Int8Array;
      const dictionary = A.vectorFromArray([...names, ...Array.from({ length: 2_000 }, (_, k) => `padding${k}`)], new A.Utf8());
      fields[i] = new A.Field("action", type, false);
      children[i] = A.makeData({ type, length: old.length, data: Int16Array.from(old), dictionary });
    });
    expect(refusal("dictionary.arrow", big)).toBe("2010 entries exceed the limit of 1024 entries in one Arrow dictionary (raise it with --limits dictionaryEntries:N)");
    expect(parseTrace(big, "dictionary.arrow", { limits: { dictionaryEntries: 2_010 } }).devices[0].events.length).toBe(8);
  });

  it("devices, streams, segments and blocks per segment in the metadata", () => {
    const devices = withMeta((m) => {
      const d = m.devices[0];
      m.devices = [d, ...Array.from({ length: 1_100 }, (_, k) => ({ ...d, device: k + 1, events: 0, initialState: [], finalState: [] }))];
    });
    expect(refusal("devices.arrow", devices)).toBe("1101 devices exceed the limit of 1024 devices (raise it with --limits devices:N)");
    const streams = withMeta((m) => {
      m.devices[0].streams.push(...Array.from({ length: 300 }, (_, k) => String(10_000 + k)));
    });
    expect(refusal("streams.arrow", streams)).toBe("device 0: 302 streams exceed the limit of 256 streams per device (raise it with --limits streams:N)");
    expect(refusal("segments.arrow", sampleArrow, { segments: 1 })).toBe("device 0: 2 segments exceed the limit of 1 segments (raise it with --limits segments:N)");
    const blocks = withMeta((m) => {
      const s = m.devices[0].finalState[0];
      s.blocks = Array.from({ length: 4 }, (_, k) => ({ ...s.blocks[0], address: s.address + k * 512 * 1024, size: 512 * 1024 }));
    });
    expect(refusal("blocks.arrow", blocks, { blocksPerSegment: 3 })).toBe("device 0: 4 blocks exceed the limit of 3 blocks in one segment (raise it with --limits blocksPerSegment:N)");
  });

  it("values and nesting of the metadata, as a snapshot's", () => {
    expect(refusal("values.arrow", sampleArrow, { objects: 20 })).toMatch(/^\d+ or more values exceed the limit of 20 values in segments, settings and annotations/);
    const deep = withMeta((m) => {
      const n = 200_000;
      m.annotations = "DEEP";
      return JSON.stringify(m).replace('"DEEP"', `${"[".repeat(n)}1${"]".repeat(n)}`);
    });
    expect(refusal("deep.arrow", deep)).toBe("1001 or more levels of nesting exceed the limit of 1000 levels of nesting (raise it with --limits depth:N)");
  });

  it("use events are not counted as values (a long recorded run holds millions)", () => {
    const trace = structuredClone(sample);
    const n = 5_000;
    trace.devices[0].access = {
      operatorNames: ["aten.add.Tensor"],
      operators: { length: 1, name: Uint32Array.of(0), position: Uint32Array.of(2), startUs: Float64Array.of(1), endUs: Float64Array.of(2) },
      uses: { length: n, position: new Uint32Array(n).fill(2), blockId: new Int32Array(n).fill(0), kind: new Uint8Array(n).fill(1), operator: new Uint32Array(n) },
      join: { operatorsRecorded: 1, operatorsBeforeTrace: 0, resultsMatched: 0, resultsUnmatched: 0, tensorsUnresolved: 0 },
    };
    expect(parseTrace(traceToArrowBytes(trace), "uses.arrow", { limits: { objects: 1_000 } }).devices[0].access?.uses.length).toBe(n);
  });
});

describe("declared lengths past what an Arrow file holds", () => {
  /** Little-endian reads of a flatbuffer table's fields (arrow-framing.ts has the layout). */
  const view = new DataView(sampleArrow.buffer, sampleArrow.byteOffset, sampleArrow.byteLength);
  const table = (at: number) => at + view.getUint32(at, true);
  const field = (t: number, i: number) => t + view.getUint16(t - view.getInt32(t, true) + 4 + 2 * i, true);
  const vector = (at: number) => at + view.getUint32(at, true) + 4;
  const n = sampleArrow.length;
  const footerStart = n - 10 - view.getInt32(n - 10, true);
  /** the footer's first record-batch block: offset (i64), metadata length (i32), body length (i64) */
  const block = vector(field(table(footerStart), 3));
  const blockOffset = Number(view.getBigInt64(block, true));
  const messageStart = blockOffset + (view.getUint32(blockOffset, true) === 0xffffffff ? 8 : 4);
  const batch = table(field(table(messageStart), 2));

  function patched(at: number, value: bigint): Uint8Array {
    const bytes = sampleArrow.slice();
    new DataView(bytes.buffer).setBigInt64(at, value, true);
    return bytes;
  }

  const huge = 2n ** 40n;
  const cases: [string, number, RegExp][] = [
    ["a record batch's body", block + 16, /^not a readable Arrow IPC file: its record batch 0 lies outside the file \(offset \d+, \d+ \+ 1099511627776 bytes\)$/],
    ["a record batch's rows", field(batch, 0), /^not a readable Arrow IPC file: its record batch 0 claims 1099511627776 rows in a body of \d+ bytes$/],
    ["a column's values", vector(field(batch, 1)), /^not a readable Arrow IPC file: its record batch 0 has a column of 1099511627776 values \(0 null\) in a body of \d+ bytes$/],
    ["a buffer's bytes", vector(field(batch, 2)) + 8, /^not a readable Arrow IPC file: its record batch 0 has a buffer \[0, \+1099511627776\) outside its body of \d+ bytes$/],
  ];
  for (const [what, at, expected] of cases) {
    it(`${what}: 2^40`, () => {
      expect(refusal("lengths.arrow", patched(at, huge))).toMatch(expected);
      expect(refusal("negative.arrow", patched(at, -1n))).toMatch(/^not a readable Arrow IPC file: the (footer|record batch 0) holds a length or offset of -1$/);
    });
  }

  it("a body cut short, at any point, with or without the footer after it", () => {
    const bodyStart = blockOffset + view.getInt32(block + 8, true);
    const bodyBytes = Number(view.getBigInt64(block + 16, true));
    for (const cut of [1, 8, Math.floor(bodyBytes / 2), bodyBytes - 1]) {
      // the file ends inside the body
      expect(refusal("cut.arrow", sampleArrow.subarray(0, bodyStart + cut))).toBe("not a readable Arrow IPC file: it does not end with ARROW1 (a truncated file?)");
      // the body loses its tail and what followed it comes at once: the footer's offsets point past
      // the messages (or, for a few bytes, into the end-of-stream marker and the bytes read are wrong)
      const spliced = new Uint8Array(n - (bodyBytes - cut));
      spliced.set(sampleArrow.subarray(0, bodyStart + cut));
      spliced.set(sampleArrow.subarray(bodyStart + bodyBytes), bodyStart + cut);
      expect(refusal("spliced.arrow", spliced)).toMatch(cut < bodyBytes - 8 ? /^not a readable Arrow IPC file: its record batch 0 lies outside the file/ : /./);
    }
  });
});

describe("a JavaScript error escaping a reader", () => {
  it("becomes one line naming the file and the stage reading got to, marked internal", () => {
    // bytes whose subarray throws, as a reader's own bug on input no check foresaw would
    class Hostile extends Uint8Array {
      override subarray(): Uint8Array<ArrayBuffer> {
        throw new TypeError("Cannot read properties of undefined (reading 'subarray')");
      }
    }
    const bytes = new Hostile(sampleArrow);
    let error: unknown;
    try {
      parseTrace(bytes, "hostile.arrow");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ImportInternalError);
    expect(error).toBeInstanceOf(TraceError);
    expect((error as ImportInternalError).internal).toBe(true);
    expect((error as Error).message).toBe(
      "hostile.arrow: internal error while reading the Arrow file (TypeError: Cannot read properties of undefined (reading 'subarray')); please report it, with this file",
    );
  });
});
