#!/usr/bin/env node
// lakebed's benchmark. Speed is reported as a ratio against a reference measured in the same run
// on the same machine, never as an absolute threshold:
//  1. import + replay of the largest shared trace vs CPython's C unpickler loading the same file
//     (`pickle.load(open(F, 'rb'))`, the floor any Python tool pays before it can look at a trace),
//     both timed inside their process, runtime start-up excluded on both sides. Two ways: cold (a
//     fresh process per run, what one `lakebed` command pays, JIT warm-up included) and warm (the
//     median of repeated imports in one process, what a service or a batch over many traces pays);
//  2. replay speed, events per second, for every policy on every shared trace;
//  3. the CLI as a whole process (scripts/bench-startup.mjs): `lakebed --help` against `node -e 0`,
//     and `lakebed replay` of a ~5 MB snapshot against a Python process that only unpickles it;
//  4. how soon Ctrl-C stops a live replay on the host driver under fault injection
//     (scripts/bench-interrupt.mjs; skipped where the host driver does not load).
// Results go to bench/results.json and bench/results.md (committed).
//
// Usage: npm run bench [-- --runs 7] [-- --only startup|interrupt]   (--only: part 3 or 4 alone,
// merged into the results already there)
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { tmpdir, cpus } from "node:os";
import { join, resolve, dirname, basename } from "node:path";
import { fileURLToPath } from "node:url";
import { readTrace } from "@lakebed/traces";
import { replayTrace, POLICIES } from "@lakebed/api";
import { doctor } from "@lakebed/native-cuda";
import { measureStartup } from "./bench-startup.mjs";
import { measureInterrupt } from "./bench-interrupt.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const shared = resolve(root, "../shared/traces");
const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (s) => process.stderr.write(`${s}\n`);

function sharedTraceFiles() {
  return readdirSync(shared)
    .filter((f) => f.endsWith(".pickle.gz"))
    .sort()
    .map((f) => join(shared, f));
}

/** Seconds CPython's pickle.load takes on `file`, measured inside the interpreter, median of runs. */
function pythonPickleLoadSeconds(file) {
  const code = "import pickle,sys,time\nt=time.perf_counter()\npickle.load(open(sys.argv[1],'rb'))\nprint(time.perf_counter()-t)";
  const times = [];
  for (let i = 0; i < runs; i++) times.push(Number(execFileSync("python3", ["-c", code, file], { encoding: "utf8" }).trim()));
  return median(times);
}

/** Import + replay timed in a fresh Node process per run (the first, unwarmed call), median of runs. */
function lakebedColdSeconds(file) {
  const code = [
    `const { readTrace } = await import(${JSON.stringify(import.meta.resolve("@lakebed/traces"))});`,
    `const { replayTrace } = await import(${JSON.stringify(import.meta.resolve("@lakebed/api"))});`,
    "const t0 = performance.now(); const trace = await readTrace(process.argv[1]);",
    "const t1 = performance.now(); replayTrace(trace); const t2 = performance.now();",
    "console.log(JSON.stringify([(t1 - t0) / 1000, (t2 - t1) / 1000]));",
  ].join("\n");
  const imports = [];
  const replays = [];
  for (let i = 0; i < runs; i++) {
    const [imp, rep] = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", code, file], { encoding: "utf8" }).trim());
    imports.push(imp);
    replays.push(rep);
  }
  return { importSeconds: median(imports), replaySeconds: median(replays) };
}

/** Import + replay repeated in this process after WARM_UP_RUNS unmeasured ones, median of runs. */
const WARM_UP_RUNS = 3;
async function lakebedSeconds(file) {
  const importTimes = [];
  const replayTimes = [];
  let events = 0;
  for (let i = 0; i < WARM_UP_RUNS; i++) replayTrace(await readTrace(file));
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const trace = await readTrace(file);
    const t1 = performance.now();
    const { document } = replayTrace(trace);
    const t2 = performance.now();
    importTimes.push((t1 - t0) / 1000);
    replayTimes.push((t2 - t1) / 1000);
    events = document.events;
  }
  return { importSeconds: median(importTimes), replaySeconds: median(replayTimes), events };
}

/** Part 3, logged as it is measured. */
function cliStartup() {
  log(`the CLI as a process: node -e 0, lakebed --help, python3 pickle.load and lakebed replay, ${Math.max(runs, 15)} rounds`);
  const s = measureStartup({ rounds: Math.max(runs, 15) });
  const m = s.medianSeconds;
  log(`  node -e 0 ${m.nodeEmpty.toFixed(3)} s; lakebed --help ${m.lakebedHelp.toFixed(3)} s`);
  log(`  ${s.snapshot}: python3 pickle.load ${m.pythonUnpickle.toFixed(3)} s; lakebed replay ${m.lakebedReplay.toFixed(3)} s; ratio ${s.replayOverPython.toFixed(2)}`);
  return s;
}

/** Part 4, logged as it is measured; null where the host driver does not load. */
async function liveInterrupt() {
  if (!doctor().drivers.host.available) {
    log("Ctrl-C during a live replay: skipped (the host driver does not load here)");
    return null;
  }
  log("Ctrl-C during a live replay (host, vms, every 3rd map failing), 3 rounds");
  const r = await measureInterrupt({ rounds: 3 });
  log(`  SIGINT to exit: median ${r.medianSeconds.toFixed(3)} s, at most ${r.maxSeconds.toFixed(3)} s; exit ${r.runs.map((x) => x.exitCode).join(", ")}`);
  return r;
}

async function main() {
  const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : null;
  if (only === "startup" || only === "interrupt") {
    const previous = JSON.parse(readFileSync(join(root, "bench/results.json"), "utf8"));
    const date = new Date().toISOString();
    const results =
      only === "startup"
        ? { ...previous, cliStartup: { date, machine: machineInfo(), ...cliStartup() } }
        : { ...previous, liveInterrupt: { date, machine: machineInfo(), ...(await liveInterrupt()) } };
    writeFileSync(join(root, "bench/results.json"), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(root, "bench/results.md"), renderMarkdown(results));
    log("wrote bench/results.json and bench/results.md");
    return;
  }
  const files = sharedTraceFiles();
  const largest = files.reduce((a, b) => (gunzipSync(readFileSync(a)).length >= gunzipSync(readFileSync(b)).length ? a : b));
  const plain = join(mkdtempSync(join(tmpdir(), "lakebed-bench-")), basename(largest).replace(/\.gz$/, ""));
  writeFileSync(plain, gunzipSync(readFileSync(largest)));
  log(`import + replay of ${basename(plain)} (${(statSync(plain).size / 2 ** 20).toFixed(1)} MiB) vs CPython pickle.load, ${runs} runs each`);
  const python = pythonPickleLoadSeconds(plain);
  const cold = lakebedColdSeconds(plain);
  const lakebed = await lakebedSeconds(plain);
  const importVsPython = {
    trace: basename(plain),
    bytes: statSync(plain).size,
    events: lakebed.events,
    pythonPickleLoadSeconds: python,
    cold: { ...cold, ratio: (cold.importSeconds + cold.replaySeconds) / python },
    warm: { importSeconds: lakebed.importSeconds, replaySeconds: lakebed.replaySeconds, ratio: (lakebed.importSeconds + lakebed.replaySeconds) / python },
  };
  for (const [name, m] of Object.entries({ cold: importVsPython.cold, warm: importVsPython.warm })) {
    log(`  ${name}: CPython pickle.load ${python.toFixed(3)} s; lakebed import ${m.importSeconds.toFixed(3)} s + replay ${m.replaySeconds.toFixed(3)} s; ratio ${m.ratio.toFixed(2)}`);
  }

  const replaySpeed = [];
  for (const file of files) {
    const trace = await readTrace(file);
    for (const policy of POLICIES) {
      const times = [];
      let events = 0;
      for (let i = 0; i < runs; i++) {
        const { document } = replayTrace(trace, { policy, traceAddresses: false });
        times.push(document.seconds);
        events = document.events;
      }
      const seconds = median(times);
      replaySpeed.push({ trace: basename(file), policy, events, seconds, eventsPerSecond: Math.round(events / seconds) });
      log(`  ${basename(file)} ${policy}: ${Math.round(events / seconds).toLocaleString("en-US")} events/s`);
    }
  }
  const machine = machineInfo();
  const date = new Date().toISOString();
  const interrupt = await liveInterrupt();
  const results = {
    date,
    machine,
    runs,
    importVsPython,
    replaySpeed,
    cliStartup: { date, machine, ...cliStartup() },
    ...(interrupt ? { liveInterrupt: { date, machine, ...interrupt } } : {}),
  };
  writeFileSync(join(root, "bench/results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(root, "bench/results.md"), renderMarkdown(results));
  log("wrote bench/results.json and bench/results.md");
}

function machineInfo() {
  return { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version, python: execFileSync("python3", ["--version"], { encoding: "utf8" }).trim() };
}

function renderMarkdown(r) {
  const iv = r.importVsPython;
  const lines = [
    "# Benchmark results",
    "",
    `Measured ${r.date.slice(0, 10)} on ${r.machine.cpu} (${r.machine.cores} cores), Node ${r.machine.node}, ${r.machine.python}; median of ${r.runs} runs. Regenerate with \`npm run bench\`.`,
    "",
    "## Import and replay vs CPython's unpickler",
    "",
    `The largest shared trace, ${iv.trace} (${(iv.bytes / 2 ** 20).toFixed(1)} MiB, ${iv.events.toLocaleString("en-US")} events), uncompressed.`,
    "The reference is `pickle.load(open(F, 'rb'))` in CPython (its C unpickler), timed inside the interpreter.",
    "",
    "Cold: a fresh Node process per run, the first import and replay it makes (what one `lakebed` command pays, JIT warm-up included).",
    "Warm: repeated imports in one process (a service, or a batch over many traces). Runtime start-up is excluded on both sides.",
    "",
    "| step | cold, seconds | warm, seconds |",
    "|---|---:|---:|",
    `| CPython pickle.load (reference) | ${iv.pythonPickleLoadSeconds.toFixed(3)} | ${iv.pythonPickleLoadSeconds.toFixed(3)} |`,
    `| lakebed import to columns | ${iv.cold.importSeconds.toFixed(3)} | ${iv.warm.importSeconds.toFixed(3)} |`,
    `| lakebed replay (recorded policy) | ${iv.cold.replaySeconds.toFixed(3)} | ${iv.warm.replaySeconds.toFixed(3)} |`,
    `| **ratio (import + replay) / pickle.load** | **${iv.cold.ratio.toFixed(2)}** | **${iv.warm.ratio.toFixed(2)}** |`,
    "",
    "## Replay speed",
    "",
    "| trace | policy | events | events/s |",
    "|---|---|---:|---:|",
    ...r.replaySpeed.map((s) => `| ${s.trace} | ${s.policy} | ${s.events.toLocaleString("en-US")} | ${s.eventsPerSecond.toLocaleString("en-US")} |`),
    "",
    ...(r.cliStartup ? renderStartup(r.cliStartup) : []),
    ...(r.liveInterrupt?.runs ? renderInterrupt(r.liveInterrupt) : []),
  ];
  return lines.join("\n");
}

function renderStartup(s) {
  const m = s.medianSeconds;
  const c = s.medianCpuSeconds;
  const spread = (k) => `${s.spreadSeconds[k][0].toFixed(3)}-${s.spreadSeconds[k][1].toFixed(3)}`;
  const cpu = (k) => (c ? c[k].toFixed(2) : "n/a");
  return [
    "## The CLI as a process",
    "",
    `Measured ${s.date.slice(0, 10)}, load average ${s.loadAverage.toFixed(1)} on ${s.machine.cores} cores: wall-clock time of each process, spawn to exit, median of ${s.rounds} rounds; each round runs the four commands in turn, so the load of the machine falls on all alike. CPU time (user + system, GNU time) moves less with the load.`,
    `The snapshot is ${s.snapshot} (${(s.snapshotBytes / 1e6).toFixed(1)} MB of pickle, uncompressed; both sides read the same file).`,
    "",
    "| command | wall, median s | wall, fastest-slowest | CPU, median s |",
    "|---|---:|---:|---:|",
    `| \`node -e 0\` (Node's own start) | ${m.nodeEmpty.toFixed(3)} | ${spread("nodeEmpty")} | ${cpu("nodeEmpty")} |`,
    `| \`lakebed --help\` | ${m.lakebedHelp.toFixed(3)} | ${spread("lakebedHelp")} | ${cpu("lakebedHelp")} |`,
    `| \`python3 -c 'pickle.load(open(F, "rb"))'\` | ${m.pythonUnpickle.toFixed(3)} | ${spread("pythonUnpickle")} | ${cpu("pythonUnpickle")} |`,
    `| \`lakebed replay F\` | ${m.lakebedReplay.toFixed(3)} | ${spread("lakebedReplay")} | ${cpu("lakebedReplay")} |`,
    `| **lakebed replay / Python unpickle** | **${s.replayOverPython.toFixed(2)}** | | ${s.replayOverPythonCpu === null ? "n/a" : s.replayOverPythonCpu.toFixed(2)} |`,
    "",
  ];
}

function renderInterrupt(r) {
  return [
    "## Ctrl-C during a live replay",
    "",
    `Measured ${r.date.slice(0, 10)}: \`lakebed ${r.command}\` on ${r.trace}, SIGINT ${(r.signalAfterMs / 1000).toFixed(0)} s after the replay holds memory; the time from the signal to the exit of the process, teardown included.`,
    "",
    "| round | SIGINT to exit, s | exit status |",
    "|---:|---:|---:|",
    ...r.runs.map((x, i) => `| ${i + 1} | ${x.seconds.toFixed(3)} | ${x.exitCode} |`),
    "",
  ];
}

main().catch((error) => {
  process.stderr.write(`bench: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
