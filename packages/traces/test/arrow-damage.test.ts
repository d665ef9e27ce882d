import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { parseTrace, TraceError } from "@lakebed/traces";
import { PickleWriter } from "./pickle-writer.js";

/**
 * Regression tests for what the importer fuzzers (test/fuzz) found in the Arrow reader: damaged
 * copies of lakebed Arrow traces, kept as the fuzzer wrote them (test/fixtures/arrow-damaged). Before
 * the fix, two made arrow-js loop for good (a footer table outside the footer, a vector count larger
 * than the file), one ended in "Unrecognized type: undefined", one in a TypeError from inside
 * arrow-js, and damaged metadata in a TypeError ("d.finalState is not iterable") or a message about
 * "undefined" bytes; the long campaign (bench/campaign) then found start states whose live blocks
 * repeat a block id, accepted, a metadata entry without a value (a TypeError), and a dictionary
 * claiming more strings than its body could hold (V8 aborted the process), and a column whose type
 * lost its unit (named "Duration<undefined>"). Each must now be one clear TraceError line naming what is wrong.
 */
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/arrow-damaged/${name}`, import.meta.url));

function rejection(file: string, bytes: Uint8Array = readFileSync(file)): string {
  let error: unknown;
  try {
    parseTrace(bytes, file);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(TraceError);
  const message = (error as TraceError).message;
  expect(message.startsWith(`${file}: `)).toBe(true);
  expect(message).not.toMatch(/\n|undefined|intermediate value|\[object /);
  return message.slice(file.length + 2);
}

describe("damaged Arrow traces are rejected in words", () => {
  const cases: [string, RegExp][] = [
    ["footer-table-outside.arrow", /^not a readable Arrow IPC file: the footer points outside itself/],
    ["dictionary-vector-too-long.arrow", /^not a readable Arrow IPC file: the dictionary batch 0 claims 65536 entries in a vector with room for fewer$/],
    ["field-type-128.arrow", /^not a readable Arrow IPC file: its schema has a field of unknown type 128$/],
    ["buffer-outside-body.arrow", /^not a readable Arrow IPC file: its record batch 0 has a buffer \[\d+, \+\d+\) outside its body of 280 bytes$/],
    ["buffers-unlike-schema.arrow", /^not a readable Arrow IPC file: its record batches do not match its schema \(arrow-js: TypeError\)$/],
    ["meta-no-final-state.arrow", /^lakebed Arrow trace metadata: lakebed\.trace\.devices\[0\]\.finalState is missing$/],
    ["meta-segment-no-address.arrow", /^lakebed Arrow trace metadata: lakebed\.trace\.devices\[0\]\.finalState\[2\]\.address is missing$/],
    // arrow-js built a JavaScript array of 1.8 billion strings and V8 aborted the whole process
    ["dictionary-rows-beyond-body.arrow", /^not a readable Arrow IPC file: its dictionary batch 0 has a column of 1811939338 values \(0 null\) in a body of 152 bytes$/],
    // the message printed arrow-js's name of the type: "Duration<undefined>"
    ["column-type-unit-unset.arrow", /^lakebed Arrow trace: the addr column is of type Duration, not Int64$/],
    ["meta-value-missing.arrow", /^an Arrow file, but not a lakebed trace \(no lakebed\.trace metadata\)$/],
    // accepted before: two live blocks of the start state with one block id (the campaign's find)
    ["initial-ids-repeated.arrow", /^device 0: lakebed Arrow trace breaks the trace model: INV-TRACE-3: the live block at \d+ in initialState has block id 40; live blocks carry the ids 0 to 218, each once$/],
  ];
  for (const [name, expected] of cases) {
    it(name, () => {
      expect(rejection(fixture(name))).toMatch(expected);
    });
  }

  it("a truncated file says so", () => {
    const bytes = readFileSync(fixture("field-type-128.arrow"));
    expect(rejection("cut.arrow", bytes.subarray(0, 1000))).toBe("not a readable Arrow IPC file: it does not end with ARROW1 (a truncated file?)");
  });
});

describe("allocator_settings holding a list with a huge integer", () => {
  it("is kept for display (JSON.stringify refused the bigint: a TypeError, found by the fuzz campaign)", () => {
    const w = new PickleWriter().proto(4);
    w.dict([
      ["segments", (x) => x.list([])],
      ["device_traces", (x) => x.list([(d) => d.list([])])],
      ["allocator_settings", (x) => x.dict([["weird", (v) => v.list([(n) => n.int(10n ** 30n)])]])],
    ]);
    const trace = parseTrace(w.stop().toBytes(), "settings.pickle");
    expect(trace.allocatorSettings?.raw.weird).toBe('["1000000000000000000000000000000"]');
  });
});

describe("a pickle integer of thousands of digits", () => {
  it("is named by its first digits and its length, not printed whole", () => {
    const digits = 10n ** 400n + 7n; // 167 bytes: one LONG1 opcode
    const w = new PickleWriter().proto(4);
    w.dict([
      ["segments", (x) => x.list([])],
      ["device_traces", (x) => x.list([(d) => d.list([(e) => e.dict([["action", (v) => v.str("alloc")], ["addr", (v) => v.int(digits)], ["size", (v) => v.int(512n)], ["stream", (v) => v.int(0n)], ["time_us", (v) => v.int(1n)], ["frames", (v) => v.list([])]])])])],
    ]);
    const message = rejection("big.pickle.gz", gzipSync(w.stop().toBytes()));
    expect(message).toMatch(/addr 100000000000\.\.\. \(an integer of 401 digits\) is not a byte count/);
    expect(message.length).toBeLessThan(200);
  });
});
