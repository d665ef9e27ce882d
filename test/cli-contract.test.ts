import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lakebed, snapshotJson, tempFile } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * The README's contract on errors and exit codes, for every command: bad input (a missing,
 * truncated or corrupt file, a trace that asks what no allocator can do) is one line on stderr that
 * names the file, and for a trace entry the device and event, with exit status 1; a usage error is
 * one line naming the option, with exit status 2; stdout then holds nothing, and with --json never
 * anything but one JSON document.
 */

const MIB = 2 ** 21;
const SEGMENT = 10 * MIB;

/** A complete trace of one block's life on device 0, with `extra` entries before its free. */
function blockLife(size: number, extra: Record<string, unknown>[] = [], segmentBytes = MIB): string {
  return snapshotJson([
    { action: "segment_alloc", addr: SEGMENT, size: segmentBytes },
    { action: "alloc", addr: SEGMENT, size },
    ...extra,
    { action: "free_requested", addr: SEGMENT, size },
    { action: "free_completed", addr: SEGMENT, size },
    { action: "segment_free", addr: SEGMENT, size: segmentBytes },
  ]);
}

const sample = gunzipSync(readFileSync(join(repoRoot, "samples/two_streams.def.pickle.gz")));
let seed = 20251;
const randomBytes = new Uint8Array(2048).map(() => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);

const good = tempFile("good.json", blockLife(512));

/** Bad files: what the one line must say besides the file's name. */
const BAD_FILES: { name: string; file: string; says: RegExp[] }[] = [
  { name: "a missing file", file: join(repoRoot, "no-such-dir/missing.pickle"), says: [/no such file|not found|ENOENT/i] },
  { name: "a truncated pickle", file: tempFile("truncated.pickle", sample.subarray(0, sample.length >> 1)), says: [/truncated|end of (file|data)|unexpected end/i] },
  { name: "random bytes", file: tempFile("random.pickle", randomBytes), says: [/./] },
  {
    name: "a second free_requested of one block (a Wasm assertion before)",
    file: tempFile("double-free.json", blockLife(512, [{ action: "free_requested", addr: SEGMENT, size: 512 }])),
    says: [/device 0/, /event 2\b/, /free_requested/],
  },
  {
    name: "a free_completed before its free_requested (a Wasm assertion before)",
    file: tempFile("completed-first.json", snapshotJson([
      { action: "segment_alloc", addr: SEGMENT, size: MIB },
      { action: "alloc", addr: SEGMENT, size: 512 },
      { action: "free_completed", addr: SEGMENT, size: 512 },
      { action: "segment_free", addr: SEGMENT, size: MIB },
    ])),
    says: [/device 0/, /event 2\b/, /before its free_requested/],
  },
  {
    name: "a size of 2^53 - 1 bytes (an addressReserve assertion under vms before)",
    file: tempFile("huge.json", blockLife(2 ** 53 - 1, [], 2 ** 53 - 1)),
    says: [/device 0/, /event 0\b/, /2\^47/],
  },
  {
    name: "a stream of 2^64 (written to Arrow as 0 before)",
    file: tempFile("stream64.json", snapshotJson([{ action: "alloc", addr: SEGMENT, size: 512, stream: 2 ** 64 }])),
    says: [/device 0/, /event 0\b/, /stream/],
  },
];

/** The commands that read a trace, as they are called with `file`. */
const TRACE_COMMANDS: { name: string; args: (file: string) => string[] }[] = [
  { name: "info", args: (f) => ["info", f] },
  { name: "replay", args: (f) => ["replay", f] },
  { name: "replay --policy vms", args: (f) => ["replay", f, "--policy", "vms"] },
  { name: "compare", args: (f) => ["compare", f] },
  { name: "verify", args: (f) => ["verify", f] },
  { name: "convert", args: (f) => ["convert", f, tempFile("out.arrow", "")] },
];

/** Usage errors: the option the line must name. */
const USAGE_ERRORS: { name: string; args: string[]; says: RegExp }[] = [
  { name: "replay --capacity abc", args: ["replay", good, "--capacity", "abc"], says: /--capacity/ },
  { name: "replay --conf asdf", args: ["replay", good, "--conf", "asdf"], says: /--conf/ },
  { name: "replay --conf with an unknown key", args: ["replay", good, "--conf", "no_such_key:1"], says: /--conf/ },
  { name: "replay --policy foo", args: ["replay", good, "--policy", "foo"], says: /--policy\b/ },
  { name: "replay --backend bogus", args: ["replay", good, "--backend", "bogus"], says: /--backend/ },
  { name: "replay --fail-every on the simulator", args: ["replay", good, "--fail-every", "map:3"], says: /--fail-every/ },
  { name: "replay --verify-data on the simulator", args: ["replay", good, "--verify-data"], says: /--verify-data/ },
  { name: "replay --fail-every with no driver call", args: ["replay", good, "--backend", "host", "--fail-every", "mop:3"], says: /--fail-every/ },
  { name: "replay --find-min-capacity live", args: ["replay", good, "--backend", "host", "--find-min-capacity"], says: /--find-min-capacity/ },
  { name: "replay, an unknown option", args: ["replay", good, "--nope"], says: /--nope/ },
  { name: "replay, no trace", args: ["replay"], says: /trace/ },
  { name: "compare --policies foo names --policies", args: ["compare", good, "--policies", "caching,foo"], says: /--policies:/ },
  { name: "compare --capacity 0", args: ["compare", good, "--capacity", "0"], says: /--capacity/ },
  { name: "compare --conf asdf", args: ["compare", good, "--conf", "asdf"], says: /--conf/ },
  { name: "verify --capacity 12XB", args: ["verify", good, "--capacity", "12XB"], says: /--capacity/ },
  { name: "info, an unknown option", args: ["info", good, "--policy", "caching"], says: /--policy/ },
  { name: "convert, no output", args: ["convert", good], says: /output/ },
  { name: "convert X X", args: ["convert", good, good], says: /output.*input/ },
  { name: "doctor, an unknown option", args: ["doctor", "--nope"], says: /--nope/ },
  { name: "an unknown command", args: ["bogus"], says: /bogus/ },
];

/** stdout holds nothing, or (with --json) at most one JSON document. */
function expectCleanStdout(stdout: string, json: boolean) {
  if (!json || stdout === "") {
    expect(stdout).toBe("");
    return;
  }
  expect(() => JSON.parse(stdout)).not.toThrow();
}

function expectOneLine(stderr: string): string {
  const lines = stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).not.toMatch(/\bat .*\.(js|ts):\d+/); // no stack
  expect(lines[0]).not.toMatch(/assembly\/|~lib\//); // no source line of the Wasm
  return lines[0];
}

describe("every command: a bad file is one line naming it, exit status 1", () => {
  // each pair once, with and without --json in turn (each process costs start-up time in npm test)
  BAD_FILES.forEach((bad, i) => {
    TRACE_COMMANDS.forEach((command, j) => {
      for (const json of [(i + j) % 2 === 0]) {
        it(`${command.name}${json ? " --json" : ""}: ${bad.name}`, () => {
          const r = lakebed([...command.args(bad.file), ...(json ? ["--json"] : [])]);
          expect(r.status).toBe(1);
          const line = expectOneLine(r.stderr);
          expect(line).toContain(bad.file);
          for (const s of bad.says) expect(line).toMatch(s);
          expectCleanStdout(r.stdout, json);
        });
      }
    });
  });
});

describe("a live replay refuses the same files before any driver call", () => {
  // on main the 2^53-1 trace reached the host backend under expandable and stopped in the Wasm
  // ("Index out of range (~lib/array.ts:114:42)")
  for (const bad of BAD_FILES.filter((b) => b.name.includes("2^53") || b.name.includes("second free_requested"))) {
    it(`replay --backend host --policy expandable: ${bad.name}`, () => {
      const r = lakebed(["replay", bad.file, "--backend", "host", "--policy", "expandable", "--json"]);
      expect(r.status).toBe(1);
      const line = expectOneLine(r.stderr);
      expect(line).toContain(bad.file);
      for (const s of bad.says) expect(line).toMatch(s);
      expect(r.stdout).toBe("");
    });
  }
});

describe("every command: a usage error is one line naming the option, exit status 2", () => {
  USAGE_ERRORS.forEach((usage, i) => {
    for (const json of [i % 2 === 0]) {
      it(`${usage.name}${json ? " --json" : ""}`, () => {
        const r = lakebed([...usage.args, ...(json ? ["--json"] : [])]);
        expect(r.status).toBe(2);
        expect(expectOneLine(r.stderr)).toMatch(usage.says);
        expectCleanStdout(r.stdout, json);
      });
    }
  });

  it("a 100,000-character value is not echoed whole", () => {
    const r = lakebed(["replay", good, "--conf", `${"x".repeat(100_000)}:1`]);
    expect(r.status).toBe(2);
    const line = expectOneLine(r.stderr);
    expect(line).toMatch(/--conf/);
    expect(line.length).toBeLessThan(400);
    expect(line).toContain("100002 characters");
  });

  it("commander's own errors are cut and escaped too (a 5,000-character option, an escape sequence)", () => {
    const long = lakebed(["replay", good, `--${"y".repeat(5000)}`]);
    expect(long.status).toBe(2);
    expect(expectOneLine(long.stderr).length).toBeLessThan(300);
    const hostile = lakebed(["bog\u001b[2Jus"]);
    expect(hostile.status).toBe(2);
    expect(expectOneLine(hostile.stderr)).toContain("bog\\x1b[2Jus");
  });

  it("convert X X leaves the input as it was", () => {
    const file = tempFile("keep.json", blockLife(4096));
    const before = readFileSync(file, "utf8");
    expect(lakebed(["convert", file, file]).status).toBe(2);
    expect(readFileSync(file, "utf8")).toBe(before);
  });
});

describe("the good file passes the same commands", () => {
  for (const command of TRACE_COMMANDS) {
    it(`${command.name} --json: exit 0, one JSON document, nothing on stderr`, () => {
      const r = lakebed([...command.args(good), "--json"]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(() => JSON.parse(r.stdout)).not.toThrow();
    });
  }
});

describe("replay without --policy of a snapshot that names its policy (lakebed_torch's allocator_settings' lakebed_policy)", () => {
  /** `json` as lakebed_torch.dump_snapshot writes it under `policy`: the policy and its conf in the settings */
  const naming = (policy: string, json: string): string => {
    const snapshot = JSON.parse(json);
    snapshot.allocator_settings = { ...snapshot.allocator_settings, PYTORCH_CUDA_ALLOC_CONF: "lakebed_large_page_mb:4", lakebed_policy: policy };
    return JSON.stringify(snapshot);
  };
  it("bad input under the policy it names is still one line naming the file, exit status 1", () => {
    const doubleFree = tempFile("double-free-lakebed.json", naming("lakebed", blockLife(512, [{ action: "free_requested", addr: SEGMENT, size: 512 }])));
    const noUses = tempFile("no-uses-tiering.json", naming("tiering", blockLife(512)));
    for (const [file, says, json] of [[doubleFree, /device 0.*event 2\b/, false], [noUses, /policy tiering needs a trace with use events/, true]] as const) {
      const r = lakebed(["replay", file, ...(json ? ["--json"] : [])]);
      expect(r.status, file).toBe(1);
      const line = expectOneLine(r.stderr);
      expect(line).toContain(file);
      expect(line).toMatch(says);
      expectCleanStdout(r.stdout, json);
    }
  });
  it("--shrink-idle where the named policy is not tiering is a usage error, exit status 2", () => {
    const r = lakebed(["replay", tempFile("lakebed.json", naming("lakebed", blockLife(512))), "--shrink-idle", "5"]);
    expect(r.status).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/--shrink-idle.*need --policy tiering/);
    expect(r.stdout).toBe("");
  });
  it("a good one replays under the policy it names and says so", () => {
    const r = lakebed(["replay", tempFile("lakebed.json", naming("lakebed", blockLife(512))), "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ policy: "lakebed", policySource: "recorded", conf: "lakebed_large_page_mb:4" });
  });
});
