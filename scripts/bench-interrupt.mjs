#!/usr/bin/env node
// How soon Ctrl-C stops a live replay (host driver): a replay of the largest shared trace under vms
// with fault injection (every 3rd map fails, which makes each event slow: about 1 ms), interrupted a
// few seconds into its replay; the time from SIGINT to the process's exit, teardown included, and
// its exit status (130 expected). A signal is handled between chunks of the replay, so this is
// about the time of one chunk. Used by scripts/bench.mjs (`liveInterrupt` in bench/results.json),
// or alone: node scripts/bench-interrupt.mjs [--rounds 3].
import { spawn } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const cli = resolve(root, "packages/api/bin/lakebed.js");
const TRACE = resolve(root, "../shared/traces/gpt2_ckpt.def.pickle.gz");
/** how long the replay runs before the signal, once it holds memory */
const RUN_BEFORE_SIGNAL_MS = 3000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Does process `pid` hold one of the host driver's memfds (named "lakebed:PID:...")? */
function holdsMemory(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).includes(`lakebed:${pid}:`);
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

async function once() {
  const child = spawn(process.execPath, [cli, "replay", TRACE, "--backend", "host", "--policy", "vms", "--fail-every", "map:3", "--json"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve({ code, at: process.hrtime.bigint() })));
  let ended = false;
  void exited.then(() => (ended = true));
  while (!holdsMemory(child.pid)) {
    if (ended) throw new Error(`the replay ended before it held memory: ${stderr}`);
    await sleep(10);
  }
  await sleep(RUN_BEFORE_SIGNAL_MS);
  if (ended) throw new Error(`the replay ended before the signal: ${stderr}`);
  const sent = process.hrtime.bigint();
  child.kill("SIGINT");
  const { code, at } = await exited;
  return { seconds: Number(at - sent) / 1e9, exitCode: code };
}

export async function measureInterrupt({ rounds = 3 } = {}) {
  const runs = [];
  for (let i = 0; i < rounds; i++) runs.push(await once());
  const sorted = runs.map((r) => r.seconds).sort((a, b) => a - b);
  return {
    trace: basename(TRACE),
    command: "replay --backend host --policy vms --fail-every map:3 --json",
    signalAfterMs: RUN_BEFORE_SIGNAL_MS,
    runs,
    medianSeconds: sorted[Math.floor(sorted.length / 2)],
    maxSeconds: sorted[sorted.length - 1],
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf("--rounds");
  const result = await measureInterrupt({ rounds: at > 0 ? Number(process.argv[at + 1]) : 3 });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
