import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { haveShared, scratchFolder, shared } from "./fixtures.js";
import { gunzipSync, gzipSync } from "node:zlib";
import { TraceError, readTrace, readTraceSync } from "@lakebed/traces";
import { PickleWriter } from "./pickle-writer.js";
import { Rng } from "../../../test/support/random.js";

/**
 * Bad input never crashes, hangs or runs anything: it is a TraceError whose message is one line
 * that names the file (and, for a trace entry, the device and event index).
 */
const scratch = scratchFolder("bad");

function write(name: string, bytes: Uint8Array | string): string {
  const file = join(scratch(), name);
  writeFileSync(file, bytes);
  return file;
}

/** The TraceError readTrace gives for `bytes`, checked to be one line naming the file. */
async function errorFor(name: string, bytes: Uint8Array | string): Promise<TraceError> {
  const file = write(name, bytes);
  const error = await readTrace(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TraceError);
  const message = (error as TraceError).message;
  expect(message.startsWith(`${file}: `)).toBe(true);
  expect(message).not.toMatch(/\n/);
  return error as TraceError;
}

/** A minimal complete snapshot: one segment, and the trace entries given, as a pickle. */
function snapshotPickle(entries: Record<string, number | string>[], segments: ((w: PickleWriter) => void)[] = []): Uint8Array {
  const w = new PickleWriter().proto(4);
  w.dict([
    ["segments", (x) => x.list(segments)],
    [
      "device_traces",
      (x) =>
        x.list([
          (y) =>
            y.list(
              entries.map((e) => (z: PickleWriter) => {
                z.dict(Object.entries(e).map(([k, v]) => [k, (q: PickleWriter) => (typeof v === "string" ? q.str(v) : q.int(v))]));
              }),
            ),
        ]),
    ],
  ]);
  return w.stop().toBytes();
}

/** The tests' seeded generator (test/support/random.ts): tests are seeded, never random. */
function seeded(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.unit();
}

describe("pickles that would run code are refused, by opcode and offset", () => {
  it("pickle.dumps(os.system) (STACK_GLOBAL, protocol 4)", async () => {
    // the exact bytes of pickle.dumps(os.system, 4) on Linux
    const bytes = Uint8Array.from([
      0x80, 0x04, 0x95, 0x14, 0, 0, 0, 0, 0, 0, 0, 0x8c, 0x05, ...new TextEncoder().encode("posix"), 0x94, 0x8c, 0x06, ...new TextEncoder().encode("system"), 0x94, 0x93, 0x94, 0x2e,
    ]);
    const error = await errorFor("os-system-4.pickle", bytes);
    expect(error.message).toContain("STACK_GLOBAL (0x93) is not allowed");
    expect(error.where.byteOffset).toBe(28);
  });

  it("GLOBAL + REDUCE (protocol 0 style: cos\\nsystem\\n(S'echo'\\ntR.)", async () => {
    const error = await errorFor("os-system-0.pickle", "cos\nsystem\n(S'echo pwned'\ntR.");
    expect(error.message).toContain("GLOBAL (0x63) is not allowed");
    expect(error.where.byteOffset).toBe(0);
  });

  it("REDUCE after plain data", async () => {
    const bytes = new PickleWriter().proto(2).str("print").op(0x29).op(0x52).stop().toBytes();
    const error = await errorFor("reduce.pickle", bytes);
    expect(error.message).toContain("REDUCE (0x52) is not allowed");
    expect(error.where.byteOffset).toBe(10);
  });

  it.each([
    ["BUILD", 0x62],
    ["INST", 0x69],
    ["OBJ", 0x6f],
    ["NEWOBJ", 0x81],
    ["EXT1", 0x82],
    ["PERSID", 0x50],
    ["BINPERSID", 0x51],
    ["NEXT_BUFFER", 0x97],
  ])("%s", async (name, code) => {
    const bytes = new PickleWriter().proto(4).emptyDict().op(code).stop().toBytes();
    const error = await errorFor(`${name}.pickle`, bytes);
    expect(error.message).toContain(`${name} (0x${code.toString(16)}) is not allowed`);
    expect(error.where.byteOffset).toBe(3);
  });
});

describe("malformed pickles", () => {
  it.skipIf(!haveShared)("a truncated snapshot", async () => {
    const whole = gunzipSync(readFileSync(shared + "mlp_offload.def.pickle.gz"));
    const error = await errorFor("truncated.pickle", whole.subarray(0, Math.floor(whole.length / 2)));
    expect(error.message).toMatch(/truncated pickle/);
  });

  it.skipIf(!haveShared)("a truncated gzip file", async () => {
    const whole = readFileSync(shared + "two_streams.def.pickle.gz");
    const error = await errorFor("truncated.pickle.gz", whole.subarray(0, Math.floor(whole.length / 2)));
    expect(error.message).toMatch(/not a valid gzip file/);
  });

  it("a pickle that ends without STOP", async () => {
    const error = await errorFor("no-stop.pickle", new PickleWriter().proto(4).emptyDict().toBytes());
    expect(error.message).toMatch(/truncated pickle: the input ends .* before STOP/);
  });

  it("a string whose length runs past the end of the file", async () => {
    const bytes = new PickleWriter().proto(4).op(0x58, 0x00, 0xca, 0x9a, 0x3b).op(...new TextEncoder().encode("abc")).toBytes();
    const error = await errorFor("long-string.pickle", bytes);
    expect(error.message).toContain("a string of 1000000000 bytes runs past the end of the input");
  });

  it("a memo index out of range", async () => {
    const error = await errorFor("memo.pickle", new PickleWriter().proto(4).op(0x68, 7).stop().toBytes());
    expect(error.message).toContain("memo index 7 out of range");
  });

  it("a huge BINPUT index does not allocate a huge memo", async () => {
    const error = await errorFor("binput.pickle", new PickleWriter().proto(2).op(0x4e).op(0x72, 0xff, 0xff, 0xff, 0x7f).stop().toBytes());
    expect(error.message).toContain("memo index 2147483647 is larger than the input");
  });

  it("stack underflow", async () => {
    expect((await errorFor("underflow1.pickle", new PickleWriter().proto(4).op(0x61).stop().toBytes())).message).toContain("APPEND with too few values");
    expect((await errorFor("underflow2.pickle", new PickleWriter().proto(4).setitems().stop().toBytes())).message).toContain("SETITEMS without a MARK");
    expect((await errorFor("underflow3.pickle", new PickleWriter().proto(4).stop().toBytes())).message).toContain("STOP with too few values");
  });

  it("absurd nesting", async () => {
    const w = new PickleWriter().proto(4);
    for (let i = 0; i < 20000; i++) w.emptyList().mark();
    const error = await errorFor("deep.pickle", w.stop().toBytes());
    expect(error.message).toContain("1001 or more levels of nesting exceed the limit of 1000 levels of nesting (raise it with --limits depth:N)");
  });

  it("an oversized LONG4", async () => {
    const error = await errorFor("long4.pickle", new PickleWriter().proto(4).op(0x8b, 0xff, 0xff, 0xff, 0x0f).stop().toBytes());
    expect(error.message).toContain("LONG4 integer of 268435455 bytes");
  });

  it("an unsupported protocol", async () => {
    const error = await errorFor("proto9.pickle", new PickleWriter().proto(9).toBytes());
    expect(error.message).toContain("unsupported pickle protocol 9");
  });

  it("a pickle of something that is not a snapshot", async () => {
    const error = await errorFor("not-snapshot.pickle", new PickleWriter().proto(4).str("hello").stop().toBytes());
    expect(error.message).toContain("not a PyTorch memory snapshot");
  });

  it("random bytes, and randomly damaged snapshots, end in a TraceError or a trace, never anything else", async () => {
    const random = seeded(42);
    const valid = snapshotPickle([
      { action: "segment_alloc", addr: 1 << 21, size: 2 << 20, stream: 0 },
      { action: "alloc", addr: 1 << 21, size: 1000, stream: 0 },
      { action: "free_requested", addr: 1 << 21, size: 1000, stream: 0 },
      { action: "free_completed", addr: 1 << 21, size: 1000, stream: 0 },
    ]);
    for (let k = 0; k < 200; k++) {
      let bytes: Uint8Array;
      if (k < 50) {
        bytes = Uint8Array.from({ length: 1 + Math.floor(random() * 4096) }, () => Math.floor(random() * 256));
      } else {
        bytes = valid.slice();
        for (let j = 0; j < 1 + (k % 4); j++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      }
      const file = write(`random-${k}.bin`, bytes);
      try {
        readTraceSync(file);
      } catch (error) {
        expect(error).toBeInstanceOf(TraceError);
        expect((error as TraceError).message.startsWith(`${file}: `)).toBe(true);
        expect((error as TraceError).message).not.toMatch(/\n/);
      }
    }
  });

  it("an empty file, a missing file, a directory", async () => {
    expect((await errorFor("empty.pickle", new Uint8Array(0))).message).toContain("the file is empty");
    await expect(readTrace(join(scratch(), "missing.pickle"))).rejects.toThrow(/missing\.pickle: cannot read the file/);
    await expect(readTrace(scratch())).rejects.toThrow(/not a regular file/);
  });
});

describe("bad trace entries name the device and event", () => {
  const segmentWith = (state: string) => (w: PickleWriter) =>
    w.dict([
      ["device", (x) => x.int(0)],
      ["address", (x) => x.int(1 << 21)],
      ["total_size", (x) => x.int(2 << 20)],
      ["stream", (x) => x.int(0)],
      ["segment_type", (x) => x.str("small")],
      ["blocks", (x) => x.list([(y) => y.dict([["address", (z) => z.int(1 << 21)], ["size", (z) => z.int(2 << 20)], ["requested_size", (z) => z.int(0)], ["state", (z) => z.str(state)]])])],
    ]);
  const segment = segmentWith("inactive");

  it("a negative size", async () => {
    const bytes = snapshotPickle([
      { action: "segment_alloc", addr: 1 << 21, size: 2 << 20, stream: 0 },
      { action: "alloc", addr: 1 << 21, size: -5, stream: 0 },
    ]);
    const error = await errorFor("negative.pickle", bytes);
    expect(error.message).toMatch(/: device 0: event 1: size -5 is not a byte count/);
    expect(error.where).toEqual({ device: 0, eventIndex: 1 });
  });

  it("an absurd size (beyond 2^53) and an absurd address", async () => {
    const huge = snapshotPickle([{ action: "alloc", addr: 4096, size: 2 ** 60 as unknown as number, stream: 0 }]);
    // 2^60 does not survive as a JS number in the writer: write it as a LONG1 via BigInt
    const bytes = new PickleWriter().proto(4);
    bytes.dict([
      ["segments", (x) => x.list([])],
      ["device_traces", (x) => x.list([(y) => y.list([(z) => z.dict([["action", (q) => q.str("alloc")], ["addr", (q) => q.int(4096)], ["size", (q) => q.int(2n ** 60n)]])])])],
    ]);
    expect(huge.length).toBeGreaterThan(0);
    const error = await errorFor("absurd.pickle", bytes.stop().toBytes());
    expect(error.message).toMatch(/: device 0: event 0: size 1152921504606846976 is not a byte count/);
    const json = JSON.stringify({ segments: [], device_traces: [[{ action: "alloc", addr: 1.5, size: 10, stream: 0 }]] });
    expect((await errorFor("absurd.json", json)).message).toMatch(/: device 0: event 0: addr 1.5 is not a byte count/);
  });

  it("an entry without an action, or with a size that is a string", async () => {
    expect((await errorFor("noaction.json", JSON.stringify({ device_traces: [[{ addr: 0, size: 1 }]] }))).message).toMatch(/device 0: event 0: trace entry has no action/);
    expect((await errorFor("strsize.json", JSON.stringify({ device_traces: [[{ action: "alloc", addr: 0, size: "big" }]] }))).message).toMatch(/device 0: event 0: size "big" is not a byte count/);
  });

  it("a free of an address never allocated, in a complete trace", async () => {
    const bytes = snapshotPickle(
      [
        { action: "segment_alloc", addr: 1 << 21, size: 2 << 20, stream: 0 },
        { action: "alloc", addr: 1 << 21, size: 1000, stream: 0 },
        { action: "free_requested", addr: 1 << 21, size: 1000, stream: 0 },
        { action: "free_completed", addr: 1 << 21, size: 1000, stream: 0 },
        { action: "free_requested", addr: (1 << 21) + 4096, size: 512, stream: 0 },
        { action: "free_completed", addr: (1 << 21) + 4096, size: 512, stream: 0 },
      ],
      [segment],
    );
    const error = await errorFor("never-allocated.pickle", bytes);
    expect(error.message).toMatch(/: device 0: event 4: free of address 0x201000 that was never allocated/);
    expect(error.where).toEqual({ device: 0, eventIndex: 4 });
  });

  it("a trace that contradicts its final state", async () => {
    // the trace ends by freeing a block the final state still holds as allocated
    const bytes = snapshotPickle([{ action: "free_completed", addr: 1 << 21, size: 1000, stream: 0 }], [segmentWith("active_allocated")]);
    expect((await errorFor("contradiction.pickle", bytes)).message).toMatch(/device 0: event 0: undoing free_completed/);
  });
});

describe("bad JSON", () => {
  it("not UTF-8", async () => {
    const bytes = Uint8Array.from([...new TextEncoder().encode('{"segments": ["'), 0xff, 0xfe, ...new TextEncoder().encode('"]}')]);
    expect((await errorFor("latin1.json", bytes)).message).toContain("invalid JSON: the file is not valid UTF-8");
  });

  it("garbage, truncated, and gzip-compressed garbage", async () => {
    expect((await errorFor("garbage.json", '{"segments": [1, 2,, }')).message).toMatch(/invalid JSON: /);
    expect((await errorFor("truncated.json", '{"segments": [')).message).toMatch(/invalid JSON: /);
    expect((await errorFor("garbage.json.gz", gzipSync('[{"address": '))).message).toMatch(/invalid JSON: /);
  });

  it("the wrong shape", async () => {
    expect((await errorFor("shape1.json", '{"device_traces": 5}')).message).toContain("device_traces is 5, expected a list of lists");
    expect((await errorFor("shape2.json", '{"hello": 1}')).message).toContain("not a PyTorch memory snapshot");
    expect((await errorFor("shape3.json", '[[1]]')).message).toContain("segments[0] is a list, expected a dict");
  });

  it("deep nesting", async () => {
    const error = await errorFor("deep.json", "[".repeat(200000) + "]".repeat(200000));
    expect(error.message).toContain("1001 or more levels of nesting exceed the limit of 1000 levels of nesting (raise it with --limits depth:N)");
  });
});
