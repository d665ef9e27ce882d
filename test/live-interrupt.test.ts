import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "./support/shared-traces.js";
import { hostAvailable } from "./support/live-drivers.js";
import { holdersAnywhere, memfdsOf } from "../packages/native-cuda/test/proc-scan.js";

/**
 * Ctrl-C during a live replay on the host driver, where it was lost before: during a short replay
 * (it was one chunk of 65,536 events, and the replay ran to the end and printed its whole output
 * with exit status 0), also under fault injection. The CLI must tear down, print nothing on stdout,
 * exit 130 (128 + SIGINT) and leave no memfd or mapping of the child anywhere. How soon it stops is
 * a benchmark's business (scripts/bench-interrupt.mjs), not this test's.
 */
const cli = join(repoRoot, "packages/api/bin/lakebed.js");
const sample = join(repoRoot, "samples/two_streams.def.pickle.gz");

async function interruptOnceHolding(args: string[]) {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => (stdout += chunk));
  child.stderr.on("data", (chunk) => (stderr += chunk));
  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      ended = true;
      resolve({ code, signal });
    }),
  );
  const needle = `lakebed:${child.pid}:`;
  const started = Date.now();
  // "during the replay", seen from outside: the child holds the driver's memfds
  while (memfdsOf(child.pid!, needle).length === 0) {
    if (ended) throw new Error(`the replay ended before it held memory: ${stderr}`);
    if (Date.now() - started > 60_000) throw new Error("the replay never held memory");
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill("SIGINT");
  const { code } = await exited;
  return { code, stdout, stderr, leftAnywhere: holdersAnywhere(needle) };
}

describe.skipIf(!hostAvailable)("Ctrl-C during a live replay", () => {
  for (const [name, args] of [
    ["during a short replay, under fault injection", ["replay", sample, "--backend", "host", "--policy", "vms", "--fail-every", "map:3", "--json"]],
    ["during a short replay, checking data", ["replay", sample, "--backend", "host", "--policy", "lakebed", "--verify-data"]],
  ] as const) {
    it(`${name}: exit 130, nothing on stdout, nothing left`, async () => {
      const r = await interruptOnceHolding([...args]);
      expect(r.code).toBe(130);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("every device allocation was released");
      expect(r.leftAnywhere).toEqual([]);
    });
  }
});
