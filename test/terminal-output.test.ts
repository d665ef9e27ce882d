import { closeSync, existsSync, openSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lakebed, tempFile } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * What the terminal gets: text recorded in a trace is shown, never acted on (an escape sequence in
 * the recorded allocator settings cannot clear the screen or forge a line), and a stdout that cannot
 * be written (a closed pipe, a full disk) ends the command with one line, or none for a closed pipe,
 * never Node's stack of an unhandled 'error' event.
 */
const cli = join(repoRoot, "packages/api/bin/lakebed.js");
const sample = join(repoRoot, "samples/two_streams.def.pickle.gz");

// clear the screen, set the window title, then a line that looks like lakebed's own
const HOSTILE = "expandable_segments:False\u001b[2J\u001b]0;owned\u0007\nlakebed: FORGED\r\u202eevil";

function hostileSettingsTrace(): string {
  return tempFile(
    "hostile\u001b[31m.json",
    JSON.stringify({
      segments: [],
      device_traces: [[
        { action: "segment_alloc", addr: 2 ** 30, size: 2 ** 21, stream: 0 },
        { action: "alloc", addr: 2 ** 30, size: 512, stream: 0 },
        { action: "free_requested", addr: 2 ** 30, size: 512, stream: 0 },
        { action: "free_completed", addr: 2 ** 30, size: 512, stream: 0 },
        { action: "segment_free", addr: 2 ** 30, size: 2 ** 21, stream: 0 },
      ]],
      allocator_settings: { PYTORCH_CUDA_ALLOC_CONF: HOSTILE, max_split_size: -1, garbage_collection_threshold: 0, expandable_segments: false, [HOSTILE]: HOSTILE },
    }),
  );
}

/** No byte that a terminal acts on, besides the newlines that end lakebed's own lines. */
function expectInert(text: string) {
  expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
  expect(text.split("\n").some((line) => line.startsWith("lakebed: FORGED"))).toBe(false);
}

describe("recorded text on the terminal", () => {
  for (const args of [["info"], ["replay"], ["replay", "--policy", "lakebed"], ["compare", "--policies", "caching"], ["verify"]]) {
    it(`${args.join(" ")}: recorded settings and file names are escaped`, () => {
      const file = hostileSettingsTrace();
      const r = lakebed([args[0], file, ...args.slice(1)]);
      expect(r.status).toBe(0);
      expectInert(r.stdout);
      expectInert(r.stderr);
      if (args[0] === "info" || args[0] === "replay") expect(r.stdout).toContain("\\x1b[2J\\x1b]0;owned\\x07\\nlakebed: FORGED\\r\\u202eevil");
    });
  }

  it("an error line quoting a value is escaped", () => {
    const r = lakebed(["replay", sample, "--policy", "\u001b[2Jx\nlakebed: FORGED"]);
    expect(r.status).toBe(2);
    expectInert(r.stderr);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
  });
});

describe("a stdout that cannot be written", () => {
  it.skipIf(!existsSync("/dev/full"))("a full disk (/dev/full): one line naming stdout, exit 1, no stack", () => {
    const full = openSync("/dev/full", "w");
    try {
      const r = spawnSync(process.execPath, [cli, "info", sample, "--json"], { stdio: ["ignore", full, "pipe"], encoding: "utf8", timeout: 60_000 });
      expect(r.status).toBe(1);
      expect(r.stderr.trimEnd().split("\n")).toEqual(["lakebed: cannot write to stdout: ENOSPC"]);
    } finally {
      closeSync(full);
    }
  });

  it("a closed pipe (`lakebed ... | head -0`): quiet, with the status of SIGPIPE, no stack", async () => {
    const child = spawn(process.execPath, [cli, "replay", sample], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.destroy(); // the reader is gone before lakebed writes
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    expect(stderr).toBe("");
    expect(code).toBe(141);
  });
});
