import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { haveSharedTraces, repoRoot, sharedTraces } from "./support/shared-traces.js";
import { hostAvailable } from "./support/live-drivers.js";
import { holdersAnywhere, memfdMappingsOf, memfdsOf } from "../packages/native-cuda/test/proc-scan.js";

/**
 * A live replay (host driver) in a child process, stopped in the middle: SIGKILL leaves the kernel
 * to free the memfds and mappings with the process, and nothing of it may remain anywhere on the
 * machine; SIGINT runs the CLI's teardown (every handle, mapping, reservation and malloc released)
 * and exits 130. "In the middle" is seen from outside: the child holds the driver's memfds.
 */
const cli = join(repoRoot, "packages/api/bin/lakebed.js");
const TRACE = join(sharedTraces, "gpt2_ckpt.def.pickle.gz");

function shmEntries(): string[] {
  return existsSync("/dev/shm") ? readdirSync("/dev/shm").filter((n) => n.includes("lakebed")) : [];
}

/** Starts a live replay and resolves once the child holds and maps memory (or rejects if it ends first). */
async function replayUnderway(): Promise<{ pid: number; needle: string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>; kill(signal: NodeJS.Signals): void }> {
  // vms: thousands of 2 MiB chunks, each a memfd, made and released throughout the replay
  const child = spawn(process.execPath, [cli, "replay", TRACE, "--backend", "host", "--policy", "vms", "--verify-data", "--json"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, stderr })),
  );
  const pid = child.pid!;
  const needle = `lakebed:${pid}:`;
  let done = false;
  void exited.then(() => (done = true));
  const started = Date.now();
  // memfds and mappings both: vms creates a stitched block's chunks before it maps them, so on a
  // loaded machine the child can be seen holding 16 memfds with none of them mapped yet
  while (memfdsOf(pid, needle).length < 16 || memfdMappingsOf(pid, needle).length === 0) {
    if (done) throw new Error(`the replay ended before it held memory: ${stderr}`);
    if (Date.now() - started > 60_000) throw new Error("the replay never held memory");
    await new Promise((r) => setTimeout(r, 10));
  }
  return { pid, needle, exited, kill: (signal) => child.kill(signal) };
}

describe.skipIf(!haveSharedTraces || !hostAvailable)("a live replay stopped in the middle", () => {
  it("SIGKILL: no memfd, mapping or file of the child is left anywhere", async () => {
    const shmBefore = shmEntries();
    const child = await replayUnderway(); // holds memfds and maps them
    child.kill("SIGKILL");
    expect((await child.exited).signal).toBe("SIGKILL");
    expect(holdersAnywhere(child.needle)).toEqual([]);
    expect(shmEntries()).toEqual(shmBefore);
  });

  it("SIGINT: the CLI tears the driver down and exits 130", async () => {
    const child = await replayUnderway();
    child.kill("SIGINT");
    const { code, stderr } = await child.exited;
    expect(code).toBe(130);
    expect(stderr).toContain("every device allocation was released");
    expect(holdersAnywhere(child.needle)).toEqual([]);
  });
});
