import { describe, expect, it } from "vitest";
import { ContainerSink, SKIPPED, TraceError, decodePickle, parseTrace, type ContainerKind } from "@lakebed/traces";
import { PickleWriter } from "./pickle-writer.js";

/**
 * The data-only decoder on its own: what CPython's pickle.dumps writes for plain data decodes to the
 * same values. The hex strings are pickle.dumps output, taken once from CPython 3.12.
 */
const hex = (h: string) => Uint8Array.from(h.match(/../g)!.map((b) => parseInt(b, 16)));
const decode = (bytes: Uint8Array) => decodePickle(bytes, { file: "t.pickle" });

// {'a': [1, -1, 2**40, -2**40, 2**70, -2**70, 1.5, None, True, False, (1, 2), (), b'xy', 'é', 'x' * 300], 'b': {1: 2}}
const SAMPLE_PROTOCOL_4 =
  "80049594010000000000007d94288c0161945d94284b014affffffff8a060000000000018a060000000000ff8a090000000000000000408a090000000000000000c0473ff80000000000004e88894b014b0286942943027879948c02c3a994582c010000" +
  "78".repeat(300) +
  "94658c0162947d944b014b0273752e";
const SAMPLE_VALUE = {
  a: [1, -1, 2 ** 40, -(2 ** 40), 2n ** 70n, -(2n ** 70n), 1.5, null, true, false, [1, 2], [], Uint8Array.from([0x78, 0x79]), "é", "x".repeat(300)],
  b: { 1: 2 },
};

describe("decodePickle", () => {
  it("decodes CPython's protocol 4 and 5 output for plain data", () => {
    expect(decode(hex(SAMPLE_PROTOCOL_4))).toEqual(SAMPLE_VALUE);
    expect(decode(hex(SAMPLE_PROTOCOL_4.replace(/^8004/, "8005")))).toEqual(SAMPLE_VALUE);
  });

  it("keeps memo references shared (protocol 2 BINPUT / BINGET): [[1, 1, 1]] * 2", () => {
    const value = decode(hex("80025d7100285d7101284b014b014b01656801652e")) as unknown[][];
    expect(value).toEqual([[1, 1, 1], [1, 1, 1]]);
    expect(value[0]).toBe(value[1]);
  });

  it("makes dicts without a prototype, so a '__proto__' key is just a key", () => {
    const value = decode(new PickleWriter().proto(4).dict([["__proto__", (w) => w.int(5)]]).stop().toBytes()) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBeNull();
    expect(Object.keys(value)).toEqual(["__proto__"]);
    expect(value["__proto__"]).toBe(5);
  });

  it("ignores bytes after STOP (the viewer's HTML export pads pickles)", () => {
    expect(decode(Uint8Array.from([...new PickleWriter().proto(4).int(7).stop().toBytes(), 0, 0, 0]))).toBe(7);
  });

  it("integers: exact numbers up to 2^53 - 1, bigints beyond, negatives in LONG1", () => {
    for (const n of [0n, 255n, 256n, 65535n, 65536n, -1n, 2n ** 31n, 2n ** 47n + 3n, 1795386090504728n, 2n ** 53n - 1n, 2n ** 53n, -(2n ** 60n)]) {
      const got = decode(new PickleWriter().proto(4).int(n).stop().toBytes());
      expect(BigInt(got as number | bigint)).toBe(n);
      expect(typeof got).toBe(n >= -(2n ** 53n - 1n) && n <= 2n ** 53n - 1n ? "number" : "bigint");
    }
  });

  it("a shaper routes containers to sinks, and skipped containers still memoize their strings", () => {
    // {"frames": [{"name": "f"}], "later": <BINGET of "f">, "rows": [{"x": 1}, {"x": 2}]}
    const w = new PickleWriter().proto(4).emptyDict().memoize().mark();
    w.str("frames").memoize().list([(x) => x.emptyDict().memoize().mark().str("name").memoize().str("f").memoize().setitems()]);
    w.str("later").memoize().op(0x68, 4); // memo: 0 dict, 1 "frames", 2 list, 3 frame dict, 4 "name", 5 "f"
    w.str("rows").memoize().list([(x) => x.dict([["x", (y) => y.int(1)]]), (x) => x.dict([["x", (y) => y.int(2)]])]);
    const bytes = w.setitems().stop().toBytes();

    const seen: unknown[] = [];
    class Rows extends ContainerSink {
      setItems(items: unknown[], from: number, to: number) {
        for (let i = from; i < to; i += 2) seen.push([items[i], items[i + 1]]);
      }
      appendItems() {}
    }
    const rows = new Rows();
    const opened: [ContainerKind, unknown][] = [];
    const shaper = {
      open(kind: ContainerKind, owner: unknown) {
        opened.push([kind, owner]);
        if (owner === "frames") return SKIPPED;
        if (kind === "dict" && (owner === "rows" || Array.isArray(owner) || owner === rows)) return rows;
        return undefined;
      },
    };
    const value = decodePickle(bytes, { file: "t.pickle", shaper }) as Record<string, unknown>;
    expect(value.frames).toBe(SKIPPED);
    expect(value.later).toBe("name");
    expect(seen).toEqual([["x", 1], ["x", 2]]);
    // the frame dict inside the skipped list was never shown to the shaper
    expect(opened.some(([kind, owner]) => kind === "dict" && owner === SKIPPED)).toBe(false);
  });

  it("every error is a TraceError with the byte offset", () => {
    for (const bytes of [Uint8Array.from([0x80, 0x04, 0x63]), Uint8Array.from([0x80]), Uint8Array.from([0x80, 0x04, 0x8c, 0x05, 0x61])]) {
      let error: unknown;
      try {
        decode(bytes);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TraceError);
      expect((error as TraceError).where.byteOffset).toBeTypeOf("number");
    }
  });

  it("a trace entry whose values are memoized, integers among them, decodes as CPython loads it", () => {
    // {"segments": [], "device_traces": [[entry, ...]]} where every value of every entry is followed
    // by MEMOIZE (BINPUT in the last entry), integers too: pickle.load takes it, the pickler never writes it
    const memoized = (write: (w: PickleWriter) => void, binput?: number) => (w: PickleWriter) => {
      write(w);
      if (binput === undefined) w.memoize();
      else w.op(0x72, ...[binput, 0, 0, 0]);
    };
    const entries = [
      { action: "segment_alloc", addr: 0x200000, size: 2097152, stream: 0, time_us: 1 },
      { action: "alloc", addr: 0x200000, size: 512, stream: 0, time_us: 2 },
      { action: "free_requested", addr: 0x200000, size: 512, stream: 0, time_us: 3 },
      { action: "free_completed", addr: 0x200000, size: 512, stream: 0, time_us: 4 },
      { action: "segment_free", addr: 0x200000, size: 2097152, stream: 0, time_us: 5 },
    ];
    const w = new PickleWriter().proto(4);
    w.dict([
      ["segments", (x) => x.list([])],
      [
        "device_traces",
        (x) =>
          x.list([
            (y) =>
              y.list(
                entries.map((e, i) => (z: PickleWriter) => {
                  const last = i === entries.length - 1;
                  z.dict(Object.entries(e).map(([k, v]) => [k, memoized((q) => (typeof v === "string" ? q.str(v) : q.int(v)), last ? 1000 + k.length : undefined)]));
                }),
              ),
          ]),
      ],
    ]);
    const bytes = w.stop().toBytes();
    for (const decoder of ["wasm", "js"] as const) {
      const trace = parseTrace(bytes, "memoized-ints.pickle", { decoder });
      const events = trace.devices[0].events;
      expect(Array.from(events.addr)).toEqual(entries.map((e) => e.addr));
      expect(Array.from(events.size)).toEqual(entries.map((e) => e.size));
      expect(Array.from(events.timeUs)).toEqual(entries.map((e) => e.time_us));
    }
  });
});
