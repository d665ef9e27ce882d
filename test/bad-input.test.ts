import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lakebed, snapshotJson, tempFile } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * Bad input never crashes, hangs or runs code: the CLI prints one line on stderr that names the
 * file (and for trace entries the event index), prints nothing on stdout, and exits with status 1.
 */
function expectCleanRejection(file: string, mentions: RegExp[]) {
  const r = lakebed(["replay", file, "--json"]);
  expect(r.status).toBe(1);
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain(file);
  for (const m of mentions) expect(lines[0]).toMatch(m);
  expect(lines[0]).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
}

const sample = gunzipSync(readFileSync(join(repoRoot, "samples/two_streams.def.pickle.gz")));

describe("bad input gets a one-line error and a non-zero exit", () => {
  it("a truncated pickle", () => {
    expectCleanRejection(tempFile("truncated.pickle", sample.subarray(0, Math.floor(sample.length / 2))), [/truncated|end of (file|data)|unexpected end/i]);
  });

  it("a truncated gzip file", () => {
    const gz = readFileSync(join(repoRoot, "samples/two_streams.def.pickle.gz"));
    expectCleanRejection(tempFile("truncated.pickle.gz", gz.subarray(0, gz.length >> 1)), [/gzip|truncated|end of/i]);
  });

  it("random bytes", () => {
    let seed = 12345;
    const bytes = new Uint8Array(4096).map(() => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
    expectCleanRejection(tempFile("random.pickle", bytes), [/./]);
  });

  it("a pickle that names a Python function to call is rejected, not run", () => {
    // pickle.dumps(os.system) at protocol 2 with a REDUCE: GLOBAL 'posix system', args ('touch x',)
    const evil = Buffer.concat([
      Buffer.from([0x80, 0x02]),
      Buffer.from("cposix\nsystem\n", "latin1"),
      Buffer.from([0x58]),
      Buffer.from([7, 0, 0, 0]),
      Buffer.from("touch x", "latin1"),
      Buffer.from([0x85, 0x52, 0x2e]),
    ]);
    expectCleanRejection(tempFile("evil.pickle", evil), [/GLOBAL|opcode/i]);
  });

  it("a negative size", () => {
    const file = tempFile("negative.json", snapshotJson([{ action: "alloc", addr: 2 ** 30, size: -512 }]));
    expectCleanRejection(file, [/event 0/, /size/i]);
  });

  it("an absurd size", () => {
    const file = tempFile("absurd.json", snapshotJson([{ action: "alloc", addr: 2 ** 30, size: 2 ** 62 }]));
    expectCleanRejection(file, [/event 0/, /size/i]);
  });

  it("a free of an address never allocated in a complete trace", () => {
    const file = tempFile(
      "unknown-free.json",
      snapshotJson([
        { action: "segment_alloc", addr: 2 ** 30, size: 2 ** 21 },
        { action: "alloc", addr: 2 ** 30, size: 512 },
        { action: "free_requested", addr: 2 ** 30, size: 512 },
        { action: "free_completed", addr: 2 ** 30, size: 512 },
        { action: "free_requested", addr: 2 ** 30 + 4096, size: 512 },
        { action: "free_completed", addr: 2 ** 30 + 4096, size: 512 },
      ], [
        { device: 0, address: 2 ** 30, total_size: 2 ** 21, allocated_size: 0, active_size: 0, requested_size: 0, stream: 0, segment_type: "small", segment_pool_id: [0, 0], is_expandable: false, frames: [], blocks: [{ address: 2 ** 30, size: 2 ** 21, requested_size: 512, state: "inactive", frames: [] }] },
      ]),
    );
    expectCleanRejection(file, [/event 4/, /never allocated|unknown|not allocated/i]);
  });

  it("garbage JSON", () => {
    expectCleanRejection(tempFile("garbage.json", '{"segments": [1, 2,'), [/JSON/i]);
  });

  it("a file that does not exist", () => {
    const r = lakebed(["info", "/nonexistent/trace.pickle"]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("/nonexistent/trace.pickle");
  });

  it("a bad --conf and a bad --capacity are usage errors (exit 2)", () => {
    const sampleFile = join(repoRoot, "samples/two_streams.def.pickle.gz");
    for (const args of [["--conf", "max_split_size_mb:banana"], ["--conf", "no_such_key:1"], ["--capacity", "12 apples"]]) {
      const r = lakebed(["replay", sampleFile, ...args]);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});
