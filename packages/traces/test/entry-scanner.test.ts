import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { entryScannerAvailable, parseTrace, readTrace } from "@lakebed/traces";
import { haveShared, shared } from "./fixtures.js";
import { PickleWriter } from "./pickle-writer.js";
import { decodeOutcome, expectSameTrace } from "./same-trace.js";

/**
 * The WebAssembly entry scanner is a fast path of the pickle decoder: with it ("wasm", the
 * default) and without it ("js"), every input must give the same trace, or the same error.
 */

const recorded = fileURLToPath(new URL("../../../test/fixtures/recorded/", import.meta.url));

function pickleFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => /\.pickle(\.gz)?$/.test(f)).sort().map((f) => join(dir, f)) : [];
}

function expectSameOutcome(bytes: Uint8Array): void {
  const wasm = decodeOutcome(() => parseTrace(bytes, "t.pickle", { decoder: "wasm" }));
  const js = decodeOutcome(() => parseTrace(bytes, "t.pickle", { decoder: "js" }));
  expect(wasm.error).toBe(js.error);
  if (wasm.trace && js.trace) expectSameTrace(wasm.trace, js.trace);
}

describe("the WebAssembly entry scanner", () => {
  it("is built and available", () => {
    expect(entryScannerAvailable()).toBe(true);
  });

  const files = haveShared ? [...pickleFiles(shared), ...pickleFiles(join(shared, "public")), ...pickleFiles(recorded)] : [];
  it.skipIf(files.length === 0).each(files.map((f) => [f.slice(f.lastIndexOf("/", f.lastIndexOf("/") - 1) + 1), f]))(
    "decodes %s exactly as the JavaScript decoder does",
    async (_name, file) => {
      const wasm = await readTrace(file).then(
        (trace) => ({ trace, error: undefined }),
        (e: Error) => ({ trace: undefined, error: e.message }),
      );
      const js = await readTrace(file, { decoder: "js" }).then(
        (trace) => ({ trace, error: undefined }),
        (e: Error) => ({ trace: undefined, error: e.message }),
      );
      expect(wasm.error).toBe(js.error);
      if (wasm.trace && js.trace) expectSameTrace(wasm.trace, js.trace);
    },
  );

  // damaged real bytes: the memo, frames and framing of a real file, with bytes changed in its trace
  const small = haveShared ? gunzipSync(readFileSync(join(shared, "two_streams.def.pickle.gz"))) : new Uint8Array(0);
  it.skipIf(!haveShared)("gives the same trace or the same error on damaged real snapshots", () => {
    const traceStart = Buffer.from(small).indexOf("device_traces");
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: traceStart, max: small.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.option(fc.integer({ min: traceStart, max: small.length }), { freq: 4 }),
        (changes, cut) => {
          const bytes = Uint8Array.from(small);
          for (const [at, value] of changes) bytes[at] = value;
          expectSameOutcome(cut === null ? bytes : bytes.subarray(0, cut));
        },
      ),
      { numRuns: 150 },
    );
  });

  // found by the property above in a CI run (seed -464293574): a trace entry's time_us LONG1 given a
  // length of 29 made the scanner's error name the entry after the JavaScript decoder's. The damage
  // left an APPENDS that reached the last entry of a run, which the scanner had already committed
  // while the JavaScript decoder keeps it open; the scanner now leaves that entry to it.
  it.skipIf(!haveShared)("gives the JavaScript decoder's error when a LONG1 length inside an entry is damaged", () => {
    const bytes = Uint8Array.from(small);
    expect(bytes[335436]).toBe(0x8a); // LONG1 of a time_us
    bytes[335437] = 29;
    expectSameOutcome(bytes);
    expect(decodeOutcome(() => parseTrace(bytes, "t.pickle")).error).toBe("t.pickle: device 0: event 4999: action is missing, expected a string");
  });

  // found by the importer fuzzer (seed 417142017, input 2676): a 7-byte size of 2^53 was accepted
  it("leaves integers past 2^53 - 1 to the JavaScript decoder, which refuses them as byte counts", () => {
    for (const size of [2n ** 53n - 1n, 2n ** 53n, 2n ** 55n]) {
      const w = new PickleWriter().proto(4);
      w.dict([
        ["segments", (x) => x.emptyList().memoize()],
        ["device_traces", (x) => x.list([(y) => y.list([(z) => z.dict([["action", (u) => u.str("alloc").memoize()], ["addr", (u) => u.int(512)], ["size", (u) => u.int(size)]])])])],
      ]);
      const bytes = w.stop().toBytes();
      expectSameOutcome(bytes);
      if (size > 2n ** 53n - 1n) expect(() => parseTrace(bytes, "t.pickle")).toThrow(/size .* is not a byte count/);
    }
  });

  // generated snapshots whose entries take every shape the scanner hands back to JavaScript
  const key = fc.constantFrom("action", "addr", "size", "stream", "time_us", "device_free", "frames", "compile_context", "user_metadata", "é");
  const scalar = fc.oneof(
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    fc.bigInt({ min: 0n, max: 2n ** 70n }),
    fc.constantFrom(2 ** 53 - 1, 2n ** 53n, 2n ** 55n - 1n, 2n ** 56n - 1n, 2n ** 63n, 2n ** 64n - 1n),
    fc.constantFrom("alloc", "free_requested", "free_completed", "segment_alloc", "oom", "snapshot", "N/A", "other", "addr", "frames", "café", ""),
    fc.constant(null),
  );
  const frame = fc.array(fc.tuple(fc.constantFrom("filename", "line", "name", "é"), scalar), { maxLength: 3 });
  const value = fc.oneof({ weight: 6, arbitrary: scalar }, { weight: 1, arbitrary: fc.array(frame, { maxLength: 3 }) });
  const entry = fc.array(fc.tuple(key, value), { maxLength: 8 });
  const wellFormed = fc.record({
    action: fc.constantFrom("alloc", "free_requested", "free_completed", "segment_alloc", "segment_free", "segment_map", "segment_unmap", "oom", "snapshot", "weird"),
    addr: fc.integer({ min: 0, max: 2 ** 40 }).map((n) => n * 512),
    size: fc.integer({ min: 0, max: 2 ** 30 }),
    stream: fc.constantFrom(0, 7, 2 ** 40),
    time_us: fc.oneof(fc.integer({ min: 0, max: 2 ** 52 }), fc.constant(null)),
  });

  function writeValue(w: PickleWriter, v: unknown): void {
    if (v === null) w.op(0x4e);
    else if (typeof v === "string") w.str(v).memoize();
    else if (typeof v === "number" || typeof v === "bigint") w.int(v);
    else w.list((v as [string, unknown][][]).map((f) => (x: PickleWriter) => x.dict(f.map(([k, fv]) => [k, (y: PickleWriter) => writeValue(y, fv)]))));
  }

  it("gives the same trace or the same error on generated snapshots", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof({ weight: 3, arbitrary: wellFormed.map((e) => Object.entries(e)) }, { weight: 1, arbitrary: entry }), { maxLength: 40 }), fc.boolean(), (entries, frameOp) => {
        const w = new PickleWriter().proto(4);
        w.dict([
          ["segments", (x) => x.emptyList().memoize()],
          [
            "device_traces",
            (x) =>
              x.list([
                (y) =>
                  y.list(
                    entries.map((pairs, i) => (z: PickleWriter) => {
                      if (frameOp && i % 7 === 3) z.op(0x95, 0, 0, 0, 0, 0, 0, 0, 0); // a FRAME between entries
                      z.dict(pairs.map(([k, v]) => [k, (u: PickleWriter) => writeValue(u, v)]));
                    }),
                  ),
              ]),
          ],
        ]);
        expectSameOutcome(w.stop().toBytes());
      }),
      { numRuns: 400 },
    );
  });
});
