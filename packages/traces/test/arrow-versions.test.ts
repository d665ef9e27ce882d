import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Field, Int16, Int64, Schema, Table, RecordBatch, Struct, makeData, tableFromIPC, tableToIPC, type Data, type DataType } from "apache-arrow";
import { parseTrace, readTrace, traceToArrowBytes, type Trace } from "@lakebed/traces";
import { scratchFolder } from "./fixtures.js";

/**
 * lakebed's Arrow format, version 2 (arrow-format.ts): the device column is Int32 and the stream
 * column UInt64, so the file's own columns hold every value the importer accepts; files of version 1
 * (Int16, and Int64 holding a stream pointer's bits) are still read as they were; a trace with a
 * value no column can hold is refused with one line, not written wrong.
 */
const scratch = scratchFolder("arrow-versions");

/** A small trace as the JSON importer reads it: one block's life on stream `stream`. */
function smallTrace(stream: bigint): Trace {
  const json = JSON.stringify({
    segments: [],
    device_traces: [[
      { action: "segment_alloc", addr: 2 ** 30, size: 2 ** 21, stream: 7 },
      { action: "alloc", addr: 2 ** 30, size: 512, stream: 7, time_us: 12.5 },
      { action: "free_requested", addr: 2 ** 30, size: 512, stream: 7 },
      { action: "free_completed", addr: 2 ** 30, size: 512, stream: 7 },
      { action: "segment_free", addr: 2 ** 30, size: 2 ** 21, stream: 7 },
    ]],
  });
  const trace = parseTrace(new TextEncoder().encode(json), "small.json");
  trace.devices[0].streams = [stream];
  return trace;
}

/** The same file as version 1 wrote it: device Int16, stream Int64 (the pointer's bits). */
function asVersion1(bytes: Uint8Array): Uint8Array {
  const table = tableFromIPC(bytes);
  const columns: [string, Data<DataType>][] = table.schema.fields.map((f) => {
    const values = table.getChild(f.name)!;
    if (f.name === "device") return [f.name, makeData({ type: new Int16(), length: table.numRows, data: Int16Array.from(values.toArray() as Int32Array) })];
    if (f.name === "stream") return [f.name, makeData({ type: new Int64(), length: table.numRows, data: BigInt64Array.from(values.toArray() as BigUint64Array, (s) => BigInt.asIntN(64, s)) })];
    return [f.name, values.data[0]];
  });
  const metadata = new Map(table.schema.metadata);
  metadata.set("lakebed.format_version", "1");
  const fields = columns.map(([name, data]) => new Field(name, data.type, false));
  const schema = new Schema(fields, metadata);
  const struct = makeData({ type: new Struct(fields), length: table.numRows, nullCount: 0, children: columns.map(([, d]) => d) });
  return tableToIPC(new Table(schema, [new RecordBatch(schema, struct)]), "file");
}

describe("Arrow format versions", () => {
  it("version 2 keeps a stream of 2^64 - 1 in its own column, as UInt64", async () => {
    const trace = smallTrace(2n ** 64n - 1n);
    const bytes = traceToArrowBytes(trace);
    const table = tableFromIPC(bytes);
    expect(table.schema.metadata.get("lakebed.format_version")).toBe("2");
    expect(String(table.getChild("stream")!.type)).toBe("Uint64");
    expect(table.getChild("stream")!.get(0)).toBe(2n ** 64n - 1n);
    const file = join(scratch(), "v2.arrow");
    writeFileSync(file, bytes);
    expect((await readTrace(file)).devices[0].streams).toEqual([2n ** 64n - 1n]);
  });

  it("a version 1 file reads as before", async () => {
    const trace = smallTrace(2n ** 63n + 9n);
    const file = join(scratch(), "v1.arrow");
    writeFileSync(file, asVersion1(traceToArrowBytes(trace)));
    const back = await readTrace(file);
    expect(back.devices[0].streams).toEqual([2n ** 63n + 9n]);
    expect(Array.from(back.devices[0].events.blockId)).toEqual(Array.from(trace.devices[0].events.blockId));
  });

  it("a trace with a value no column holds is refused, not written wrong", () => {
    const big = smallTrace(2n ** 64n);
    expect(() => traceToArrowBytes(big)).toThrow(/small\.json: device 0: stream 18446744073709551616 cannot be written/);
    const device = smallTrace(7n);
    device.devices[0].device = 2 ** 31;
    expect(() => traceToArrowBytes(device)).toThrow(/device 2147483648 cannot be written/);
  });

  it("a version 2 file whose rows disagree with its metadata on the device is refused", async () => {
    const bytes = traceToArrowBytes(smallTrace(7n));
    const table = tableFromIPC(bytes);
    const meta = JSON.parse(table.schema.metadata.get("lakebed.trace")!);
    meta.devices[0].device = 3;
    const metadata = new Map(table.schema.metadata);
    metadata.set("lakebed.trace", JSON.stringify(meta));
    const schema = new Schema(table.schema.fields, metadata);
    const file = join(scratch(), "device-mismatch.arrow");
    writeFileSync(file, tableToIPC(new Table(schema, table.batches.map((b) => new RecordBatch(schema, b.data))), "file"));
    await expect(readTrace(file)).rejects.toThrow(/device-mismatch\.arrow: device 3: event 0: row 0 has device 0 where the metadata has device 3/);
  });
});
