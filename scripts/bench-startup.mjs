#!/usr/bin/env node
// What a `lakebed` command costs as a whole process, start-up included, against references run in
// the same rounds on the same machine (issue 11, item 7):
//   node -e 0                     Node's own start, the floor of any lakebed command
//   lakebed --help                what every command pays before it reads a byte
//   python3 (pickle.load)         a Python process that only unpickles the snapshot (plain pickle)
//   lakebed replay SNAPSHOT       a whole replay of a ~5 MB snapshot, human output
// Each round runs every command once, in turn, so that the load of a shared machine falls on all of
// them alike; the figures are medians over the rounds (wall-clock time of the process, spawn to exit).
// Used by scripts/bench.mjs (which writes the result into bench/results.json as `cliStartup`), or
// alone: node scripts/bench-startup.mjs [--rounds 15] [--snapshot F.pickle.gz] prints the JSON.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const cli = resolve(root, "packages/api/bin/lakebed.js");
/** 5.1 MB of pickle once uncompressed (70,640 events): the typical snapshot of the issue. */
export const STARTUP_SNAPSHOT = resolve(root, "../shared/traces/gpt2_emptycache.def.pickle.gz");

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * CPU time (user + system) needs the child's rusage, which Node does not give: GNU time reports it
 * where installed. It moves less than wall-clock time with the load of a shared machine.
 */
const GNU_TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : null;

/** Wall-clock seconds of one run of the process, and its CPU seconds (null without GNU time). */
function run(command, args) {
  const [file, argv] = GNU_TIME ? [GNU_TIME, ["-f", "cpu %U %S", command, ...args]] : [command, args];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, argv, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const t1 = process.hrtime.bigint();
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  const cpu = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { wall: Number(t1 - t0) / 1e9, cpu: cpu ? Number(cpu[1]) + Number(cpu[2]) : null };
}

export function measureStartup({ rounds = 15, snapshot = STARTUP_SNAPSHOT } = {}) {
  // both sides read the plain pickle: Python's unpickler reading through gzip.open is several times
  // slower than on the file (it asks the GzipFile for a few bytes at a time), which would flatter lakebed
  const plain = join(mkdtempSync(join(tmpdir(), "lakebed-bench-")), basename(snapshot).replace(/\.gz$/, ""));
  writeFileSync(plain, gunzipSync(readFileSync(snapshot)));
  const unpickle = "import pickle,sys\npickle.load(open(sys.argv[1], 'rb'))";
  // the interpreter itself: a `python3` on PATH may be a version manager's shim (pyenv's costs 2 s a call)
  const python = spawnSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).stdout.trim();
  const commands = {
    nodeEmpty: [process.execPath, ["-e", "0"]],
    lakebedHelp: [process.execPath, [cli, "--help"]],
    pythonUnpickle: [python, ["-c", unpickle, plain]],
    lakebedReplay: [process.execPath, [cli, "replay", plain]],
  };
  const wall = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  const cpu = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  // one unmeasured round: the file cache and the compiled-code caches warm for every command alike
  for (const [command, args] of Object.values(commands)) run(command, args);
  for (let i = 0; i < rounds; i++) {
    for (const [name, [command, args]] of Object.entries(commands)) {
      const r = run(command, args);
      wall[name].push(r.wall);
      if (r.cpu !== null) cpu[name].push(r.cpu);
    }
  }
  const m = Object.fromEntries(Object.entries(wall).map(([k, v]) => [k, median(v)]));
  const c = GNU_TIME ? Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, median(v)])) : null;
  return {
    snapshot: basename(plain),
    snapshotBytes: statSync(plain).size,
    rounds,
    // the machine's load while measuring: on a shared machine it scales every wall-clock figure
    loadAverage: loadavg()[0],
    medianSeconds: m,
    spreadSeconds: Object.fromEntries(Object.entries(wall).map(([k, v]) => [k, [Math.min(...v), Math.max(...v)]])),
    medianCpuSeconds: c,
    helpSeconds: m.lakebedHelp,
    helpOverNodeSeconds: m.lakebedHelp - m.nodeEmpty,
    replayOverPython: m.lakebedReplay / m.pythonUnpickle,
    replayOverPythonCpu: c ? c.lakebedReplay / c.pythonUnpickle : null,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf("--rounds");
  const file = process.argv.indexOf("--snapshot");
  const result = measureStartup({ rounds: at > 0 ? Number(process.argv[at + 1]) : 15, snapshot: file > 0 ? resolve(process.argv[file + 1]) : STARTUP_SNAPSHOT });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
