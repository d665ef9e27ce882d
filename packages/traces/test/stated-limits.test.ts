import { describe, expect, it } from "vitest";
import { constants as bufferConstants } from "node:buffer";
import { TraceError, parseTrace } from "@lakebed/traces";

/**
 * Input beyond one of the importer's stated limits is refused with one line that names the file,
 * the limit and the value found (and the option that raises it, where there is one), never with a
 * message that calls valid input malformed. Inputs are generated just past each limit, lowered
 * through ReadTraceOptions.limits where the default is large, so that each test stays small.
 */

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
