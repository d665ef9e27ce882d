import { describe, expect, it } from "vitest";
import { constants as bufferConstants } from "node:buffer";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { TraceError, parseLimits, parseTrace, readTrace } from "@lakebed/traces";
import { PickleWriter } from "./pickle-writer.js";
import { scratchFolder } from "./fixtures.js";

/**
 * Input beyond one of the importer's stated limits is refused with one line that names the file,
 * the limit and the value found (and the option that raises it, where there is one), never with a
 * message that calls valid input malformed. Inputs are generated just past each limit, lowered
 * through ReadTraceOptions.limits where the default is large, so that each test stays small.
 */

const scratch = scratchFolder("limits");

/** The TraceError parseTrace gives for `bytes`, checked to be one line naming the file. */
function refusal(file: string, bytes: Uint8Array, opts: Parameters<typeof parseTrace>[2] = {}): TraceError {
  let error: unknown;
  try {
    parseTrace(bytes, file, opts);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(TraceError);
  const message = (error as TraceError).message;
  expect(message.startsWith(`${file}: `)).toBe(true);
  expect(message).not.toMatch(/\n/);
  return error as TraceError;
}

describe("strings longer than JavaScript can hold are a stated limit, not invalid UTF-8", () => {
  // one byte past V8's longest string (2^29 - 24 on 64-bit), all ASCII: valid UTF-8 in every way.
  // Both inputs are built in one buffer (the JSON text's quoted string is the pickle's string), since
  // touching half a GiB is most of each test's time.
  const tooLong = bufferConstants.MAX_STRING_LENGTH + 1;
  const jsonHead = new TextEncoder().encode('{"segments": [], "device_traces": [], "note": "');
  const buffer = new Uint8Array(jsonHead.length + tooLong + 2).fill(0x61);

  it("a valid JSON snapshot longer than the longest string", () => {
    buffer.set(jsonHead, 0);
    buffer.set(new TextEncoder().encode('"}'), buffer.length - 2);
    const error = refusal("huge.json", buffer);
    expect(error.message).not.toContain("UTF-8");
    expect(error.message).toContain(`a JSON snapshot of ${buffer.length} bytes is longer than the longest string JavaScript can hold (${bufferConstants.MAX_STRING_LENGTH}`);
  });

  it("a valid pickle holding a string longer than the longest string (BINUNICODE8)", () => {
    // {"note": "aaaa..."} : PROTO 4, EMPTY_DICT, SHORT_BINUNICODE "note", BINUNICODE8 n, bytes, SETITEM, STOP
    const head = [0x80, 0x04, 0x7d, 0x8c, 0x04, ...new TextEncoder().encode("note"), 0x8d, 0, 0, 0, 0, 0, 0, 0, 0];
    const bytes = buffer.subarray(jsonHead.length - head.length);
    bytes.set(head, 0);
    new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(head.length - 8, BigInt(tooLong), true);
    bytes.set([0x73, 0x2e], bytes.length - 2);
    // the JavaScript decoder alone: the entry scanner would first copy the half GiB into its memory
    const error = refusal("huge-string.pickle", bytes, { decoder: "js" });
    expect(error.message).not.toContain("UTF-8");
    expect(error.message).not.toContain("malformed");
    expect(error.message).toContain(`a string of ${tooLong} bytes is longer than the longest string JavaScript can hold`);
    expect(error.where.byteOffset).toBe(head.length - 9);
  });
});

const MiB = 1024 * 1024;
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

/** A complete trace on `device`: each stream gets a segment, an allocation in it, and their frees. */
function streamEntries(streams: number) {
  const entries: Record<string, unknown>[] = [];
  for (let s = 0; s < streams; s++) {
    const addr = (s + 1) * 2 * MiB;
    for (const action of ["segment_alloc", "alloc", "free_requested", "free_completed", "segment_free"]) {
      entries.push({ action, addr, size: action.startsWith("segment") ? 2 * MiB : 512, stream: 1000 + s, time_us: entries.length });
    }
  }
  return entries;
}

/** A final state of `count` segments of `blocks` blocks of 512 bytes each. */
function segments(count: number, blocks: number, device = 0) {
  return Array.from({ length: count }, (_, i) => {
    const address = (i + 1) * 64 * MiB;
    return {
      device,
      address,
      total_size: blocks * 512,
      stream: 0,
      segment_type: "large",
      blocks: Array.from({ length: blocks }, (_, j) => ({ address: address + j * 512, size: 512, requested_size: 512, state: "active_allocated" })),
    };
  });
}

describe("each stated limit: at the limit the trace imports, past it one line names the limit, the value and the option", () => {
  it("streams per device", () => {
    const bytes = (n: number) => json({ segments: [], device_traces: [streamEntries(n)] });
    expect(parseTrace(bytes(4), "streams.json", { limits: { streams: 4 } }).devices[0].streams.length).toBe(4);
    const error = refusal("streams.json", bytes(5), { limits: { streams: 4 } });
    expect(error.message).toBe("streams.json: device 0: 5 streams exceed the limit of 4 streams per device (raise it with --limits streams:N)");
  });

  it("devices, as device_traces lists (pickle and JSON) and as segments' devices", () => {
    const lists = (n: number) => Array.from({ length: n }, () => streamEntries(1));
    expect(parseTrace(json({ segments: [], device_traces: lists(3) }), "devices.json", { limits: { devices: 3 } }).devices.length).toBe(3);
    expect(refusal("devices.json", json({ segments: [], device_traces: lists(4) }), { limits: { devices: 3 } }).message).toBe(
      "devices.json: 4 devices exceed the limit of 3 devices (raise it with --limits devices:N)",
    );
    const onSegments = [0, 1, 2, 3].flatMap((d) => segments(1, 1, d).map((s) => ({ ...s, address: s.address + d * 1024 * MiB })));
    expect(refusal("devices-segments.json", json({ segments: onSegments, device_traces: [] }), { limits: { devices: 3 } }).message).toContain("4 or more devices exceed the limit of 3 devices");
    // the pickle decoder refuses the list past the limit as it opens, before its entries are decoded
    const w = new PickleWriter().proto(4);
    w.dict([["segments", (x) => x.list([])], ["device_traces", (x) => x.list([0, 1, 2, 3].map(() => (y: PickleWriter) => y.list([])))]]);
    expect(refusal("devices.pickle", w.stop().toBytes(), { limits: { devices: 3 } }).message).toContain("4 or more devices exceed the limit of 3 devices");
  });

  it("segments, and blocks in one segment", () => {
    expect(parseTrace(json({ segments: segments(3, 3), device_traces: [] }), "segments.json", { limits: { segments: 3, blocksPerSegment: 3 } }).devices[0].finalState.length).toBe(3);
    expect(refusal("segments.json", json({ segments: segments(4, 1), device_traces: [] }), { limits: { segments: 3 } }).message).toBe(
      "segments.json: 4 segments exceed the limit of 3 segments (raise it with --limits segments:N)",
    );
    expect(refusal("blocks.json", json({ segments: segments(1, 4), device_traces: [] }), { limits: { blocksPerSegment: 3 } }).message).toBe(
      "blocks.json: device 0: 4 blocks exceed the limit of 3 blocks in one segment (raise it with --limits blocksPerSegment:N)",
    );
  });

  it("memo fan-out: a 300-byte pickle of lists that each refer to the previous one twice (2^40 values) is refused at the limit", () => {
    // {"segments": L40} where L0 = [] and L(k+1) = [Lk, Lk] through the memo: EMPTY_LIST MEMOIZE MARK
    // BINGET BINGET APPENDS, each but the last popped off the stack once memoized
    const fanOut = (w: PickleWriter, first: number) => {
      w.emptyList().memoize().op(0x30); // memo `first`: L0
      for (let k = 0; k < 40; k++) {
        w.emptyList().memoize().mark().op(0x68, first + k, 0x68, first + k).appends();
        if (k < 39) w.op(0x30);
      }
    };
    const w = new PickleWriter().proto(4).emptyDict().memoize().mark().str("segments").memoize();
    fanOut(w, 2);
    const bytes = w.setitems().stop().toBytes();
    expect(bytes.length).toBeLessThan(400);
    const error = refusal("fan-out.pickle", bytes, { limits: { objects: 10_000 } });
    expect(error.message).toMatch(/^fan-out\.pickle: 10\d\d\d or more values exceed the limit of 10000 values in segments, settings and annotations \(counted at every memo reference\) \(raise it with --limits objects:N\)$/);
    // the same fan-out in the allocator settings, which are printed (JSON.stringify would never end)
    const settings = new PickleWriter().proto(4).emptyDict().memoize().mark().str("segments").memoize().emptyList().memoize().str("allocator_settings").memoize();
    settings.emptyDict().memoize().mark().str("nested").memoize();
    fanOut(settings, 6);
    const error2 = refusal("fan-out-settings.pickle", settings.setitems().setitems().stop().toBytes(), { limits: { objects: 10_000 } });
    expect(error2.message).toContain("values exceed the limit of 10000 values");
  });

  it("depth: nested lists in a pickle (open MARKs) and in JSON (the walk)", () => {
    const w = new PickleWriter().proto(4);
    for (let i = 0; i < 30; i++) w.emptyList().mark();
    expect(refusal("deep.pickle", w.stop().toBytes(), { limits: { depth: 20 } }).message).toBe(
      `deep.pickle: byte ${2 + 20 * 2 + 1}: 21 or more levels of nesting exceed the limit of 20 levels of nesting (raise it with --limits depth:N)`,
    );
    const deep = `{"segments": [], "device_traces": [], "allocator_settings": {"x": ${"[".repeat(30)}${"]".repeat(30)}}}`;
    expect(refusal("deep.json", new TextEncoder().encode(deep), { limits: { depth: 20 } }).message).toBe(
      "deep.json: 21 or more levels of nesting exceed the limit of 20 levels of nesting (raise it with --limits depth:N)",
    );
  });

  it("decompressed bytes: a gzip bomb stops at the limit (readTrace streams it, parseTrace too)", async () => {
    // 64 MiB of a repeated byte compress to about 64 KiB: a 1000:1 bomb against a 1 MiB limit
    const bomb = gzipSync(new Uint8Array(64 * MiB).fill(0x20));
    const file = join(scratch(), "bomb.pickle.gz");
    writeFileSync(file, bomb);
    const error = await readTrace(file, { limits: { decompressedBytes: MiB } }).then(
      () => undefined,
      (e: unknown) => e as TraceError,
    );
    expect(error).toBeInstanceOf(TraceError);
    expect(error!.message).toMatch(new RegExp(`^${file}: \\d+ or more decompressed bytes exceed the limit of 1048576 decompressed bytes \\(raise it with --limits decompressedBytes:N\\)$`));
    expect(refusal("bomb.pickle.gz", bomb, { limits: { decompressedBytes: MiB } }).message).toContain("decompressed bytes exceed the limit of 1048576 decompressed bytes");
    // under the limit, a gzip trace is read as before, through the streaming path
    const small = join(scratch(), "small.json.gz");
    writeFileSync(small, gzipSync(json({ segments: [], device_traces: [streamEntries(2)] })));
    expect((await readTrace(small, { limits: { decompressedBytes: MiB } })).devices[0].events.length).toBe(10);
  });

  it("the option's syntax", () => {
    expect(parseLimits("streams:1024, devices:8")).toEqual({ streams: 1024, devices: 8 });
    expect(() => parseLimits("stream:5")).toThrow("unknown limit 'stream'");
    expect(() => parseLimits("streams:0")).toThrow("limit streams needs a whole number of at least 1, not '0'");
    expect(() => parseLimits("streams:1e3")).toThrow("needs a whole number");
  });
});
