import { describe, expect, it } from "vitest";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { haveShared, scratchFolder, shared } from "./fixtures.js";
import { gunzipSync, gzipSync } from "node:zlib";
import { decodePickle, readTrace, writeTraceArrow, type Trace } from "@lakebed/traces";

/**
 * The three input formats agree: a snapshot saved as JSON (what json.dump writes: tuples become
 * lists) reads as the same trace as its pickle, plain or gzip-compressed, and lakebed's Arrow file
 * reads back as the trace it was written from.
 */
const scratch = scratchFolder("formats");

/**
 * Expects two traces to hold the same content (all but the description of the file each was read
 * from). Event columns are compared as bytes: element-wise deep equality is slow on 300k events.
 */
function expectSameContent(got: Trace, want: Trace): void {
  const strip = (t: Trace) => ({ ...t, file: "", format: "", gzip: false, devices: t.devices.map((d) => ({ ...d, events: d.events.length })) });
  expect(strip(got)).toEqual(strip(want));
  got.devices.forEach((d, k) => {
    const w = want.devices[k].events;
    for (const column of ["action", "addr", "size", "stream", "timeUs", "blockId"] as const) {
      const a = d.events[column];
      const b = w[column];
      expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `device ${d.device} column ${column}`).toBe(true);
    }
  });
}

function allTraceFiles(): string[] {
  if (!haveShared) return [];
  const top = readdirSync(shared).filter((f) => f.endsWith(".pickle.gz"));
  const pub = readdirSync(join(shared, "public")).filter((f) => f.endsWith(".pickle")).map((f) => `public/${f}`);
  return [...top, ...pub].sort();
}

/**
 * The snapshot as json.dump would write it: the pickle decoded as plain data. With `dropFrames`,
 * stack frames are left out (they are shared in the pickle but repeated in JSON, which makes some
 * files large; the reader ignores them either way).
 */
function asJson(pickleFile: string, dropFrames = false): string {
  const raw = readFileSync(pickleFile);
  const value = decodePickle(raw[0] === 0x1f ? gunzipSync(raw) : raw, { file: pickleFile });
  return JSON.stringify(value, dropFrames ? (key, v) => (key === "frames" ? undefined : v) : undefined);
}

describe.skipIf(!haveShared)("JSON input reads like the pickle it was saved from", () => {
  const cases: [string, boolean][] = [
    ["two_streams.def.pickle.gz", false],
    ["public/code_location.expandable_oom.pickle", false],
    ["public/ftcourse.lora_2024.pickle", true],
    ["public/llm_inference.legacy_oom.pickle", false],
  ];
  for (const [name, dropFrames] of cases) {
    it(name, async () => {
      const fromPickle = await readTrace(shared + name);
      const json = asJson(shared + name, dropFrames);
      const plain = join(scratch(), name.replace(/\W/g, "_") + ".json");
      writeFileSync(plain, json);
      const zipped = `${plain}.gz`;
      writeFileSync(zipped, gzipSync(json));
      const fromJson = await readTrace(plain);
      expect(fromJson.format).toBe("json");
      expectSameContent(fromJson, fromPickle);
      const fromGzip = await readTrace(zipped);
      expect(fromGzip.gzip).toBe(true);
      expectSameContent(fromGzip, fromPickle);
    });
  }

  it("a bare segments list (torch.cuda.memory_snapshot()) is a state-only trace", async () => {
    const snapshot = JSON.parse(asJson(shared + "public/silmont.forward_bf16_128.pickle"));
    const file = join(scratch(), "bare-segments.json");
    writeFileSync(file, JSON.stringify(snapshot.segments));
    const trace = await readTrace(file);
    expect(trace.devices).toHaveLength(1);
    expect(trace.devices[0].events.length).toBe(0);
    expect(trace.devices[0].finalState).toHaveLength(snapshot.segments.length);
    expect(trace.devices[0].initialState).toEqual(trace.devices[0].finalState);
    expect(trace.devices[0].complete).toBe(false);
  });
});

describe.skipIf(!haveShared)("Arrow files read back as the trace they were written from", () => {
  for (const name of allTraceFiles()) {
    it(name, async () => {
      const original = await readTrace(shared + name);
      const file = join(scratch(), name.replace(/\W/g, "_") + ".arrow");
      await writeTraceArrow(original, file);
      expect(readFileSync(file).subarray(0, 6).toString("latin1")).toBe("ARROW1");
      const back = await readTrace(file);
      expect(back.format).toBe("arrow");
      expectSameContent(back, original);
      const zipped = `${file}.gz`;
      await writeTraceArrow(original, zipped);
      expectSameContent(await readTrace(zipped), original);
      // sizes, for the record (the README of the package quotes them): the Arrow file is uncompressed
      if (name === "gpt2_ckpt.def.pickle.gz") {
        expect(statSync(file).size).toBeGreaterThan(statSync(shared + name).size);
        expect(statSync(zipped).size).toBeLessThan(statSync(shared + name).size);
      }
    });
  }

  it("an Arrow file that is not a lakebed trace is refused", async () => {
    const original = await readTrace(shared + "two_streams.def.pickle.gz");
    const file = join(scratch(), "damaged.arrow");
    await writeTraceArrow(original, file);
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.length - 100));
    await expect(readTrace(file)).rejects.toThrow(/damaged\.arrow: /);
  });
});
