#!/usr/bin/env node
// The library's own time per malloc and free, against the policy's, on the host driver (no GPU).
//
// wrapper_bench.cc (built here from the library's objects, which scripts/build.mjs leaves in
// build/obj) replays one shared trace's requests through liblakebed_torch.so as PyTorch calls it
// and, in the same process, pass by pass in turn, straight into the same wasm2c module (the
// reference: the policy's calls alone). Speed is the ratio of the two, never an absolute figure:
// the library's median (and p99) per call over the reference's, and the difference, which is what
// the wrapper (lock, pointer table, trace, fences, events, latency record, entry points) costs.
//
// Results are merged into bench/results/wrapper-host.json under --label (with the commit and
// whether packages/torch had changes not committed), and bench/results/wrapper-host.md is written
// from every label there.
//
//   node packages/torch/bench/wrapper-bench.mjs --label before [--passes 7] [--rounds 3]
//        [--trace ../shared/traces/gpt2_ckpt.def.pickle.gz] [--policies caching,lakebed]
//   node packages/torch/bench/wrapper-bench.mjs --report      (the .md again from the .json, no run)
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Action, readTrace } from "@lakebed/traces";
import { WABT_RUNTIME, WASM_RT_DEFINES } from "../scripts/wasm-rt.mjs";

const benchDir = dirname(fileURLToPath(import.meta.url));
const pkgRoot = resolve(benchDir, "..");
const repoRoot = resolve(pkgRoot, "../..");
const build = join(pkgRoot, "build");
const obj = join(build, "obj");

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const label = arg("label", "current");
const passes = Number(arg("passes", "7"));
const rounds = Number(arg("rounds", "3"));
const tracePath = resolve(repoRoot, arg("trace", "../shared/traces/gpt2_ckpt.def.pickle.gz"));
const policies = arg("policies", "caching,lakebed").split(",");
const log = (s) => process.stderr.write(`${s}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The bench executable: wrapper_bench.cc with the library's module, runtime, policy and driver objects. */
function buildBench() {
  // the library's build first: it rebuilds whatever objects a source, header or flag change left stale
  execFileSync(process.execPath, [join(pkgRoot, "scripts/build.mjs")], { stdio: ["ignore", "ignore", "inherit"] });
  const library = join(build, "liblakebed_torch.so");
  if (!existsSync(library)) throw new Error("liblakebed_torch.so was not built (wasm2c or a compiler missing: apt-get install wabt g++)");
  const out = join(build, "lakebed-torch-wrapper-bench");
  const objects = ["core_sim.o", "wasm-rt-impl.o", "wasm_policy.o", "device_imports.o", "alloc_conf.o", "native_driver_core.o", "native_host_backend.o"].map((o) => join(obj, o));
  const flags = ["-std=c++17", "-O2", "-D_GNU_SOURCE", ...WASM_RT_DEFINES];
  const includes = [join(build, "gen"), WABT_RUNTIME, "/usr/src/wasm2c", join(repoRoot, "packages/native-cuda/src/native"), join(pkgRoot, "src/native"), join(pkgRoot, "harness")].map((d) => `-I${d}`);
  execFileSync(process.env.CXX ?? "c++", [...flags, ...includes, join(benchDir, "wrapper_bench.cc"), ...objects, "-o", out, "-ldl", "-lpthread"], { stdio: "inherit" });
  return { library, bench: out };
}

/** The trace's requests, one line each ("a id size stream", "r id"), as the harness's latency mode reads them. */
async function writeRequests() {
  const trace = await readTrace(tracePath);
  const [device] = trace.devices;
  const e = device.events;
  const lines = [];
  const streams = new Set();
  let allocs = 0;
  for (let i = 0; i < e.length; i++) {
    if (e.action[i] === Action.Alloc) {
      lines.push(`a ${e.blockId[i]} ${e.size[i]} ${e.stream[i]}`);
      streams.add(e.stream[i]);
      allocs++;
    } else if (e.action[i] === Action.FreeRequested) lines.push(`r ${e.blockId[i]}`);
  }
  const path = join(mkdtempSync(join(tmpdir(), "wrapper-bench-")), "requests.txt");
  writeFileSync(path, lines.join("\n") + "\n");
  return { path, allocs, streams: streams.size };
}

function git(args) {
  const r = spawnSync("git", args, { cwd: repoRoot, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "";
}

const round3 = (x) => Math.round(x * 1000) / 1000;

/**
 * One policy's rounds: each figure is the median over rounds of the round's figure (one process,
 * its later passes pooled), each ratio the median over rounds of the round's ratio (library and
 * reference measured side by side in the same process, so the machine's load of the moment divides
 * out). placedNs: what the library's own policy calls (MallocPlaced, FreeResolved) add to the
 * reference's; wrapperNs: the library's median minus the reference's (the rest is lock, tables,
 * trace, fences, events, latency record and entry points).
 */
function summarize(policy, runs) {
  const row = { policy, rounds: runs };
  for (const call of ["laterMalloc", "laterFree", "firstMalloc", "firstFree"]) {
    const fig = (side, stat) => median(runs.map((x) => x[side][call][stat]));
    const per = (side) => ({ median: fig(side, "median"), p99: fig(side, "p99"), mean: fig(side, "mean") });
    const lib = per("library"), ref = per("reference"), placed = per("placed");
    const ratioOf = (stat) => round3(median(runs.map((x) => x.library[call][stat] / x.reference[call][stat])));
    row[call] = {
      library: lib,
      reference: ref,
      placed,
      ratio: { median: ratioOf("median"), p99: ratioOf("p99"), mean: ratioOf("mean") },
      wrapperNs: median(runs.map((x) => x.library[call].median - x.reference[call].median)),
      placedNs: median(runs.map((x) => x.placed[call].median - x.reference[call].median)),
    };
  }
  row.libraryInside = { laterMalloc: median(runs.map((x) => x.libraryInside.laterMalloc.median)), laterFree: median(runs.map((x) => x.libraryInside.laterFree.median)) };
  return row;
}

async function main() {
  const file = join(benchDir, "results/wrapper-host.json");
  if (process.argv.includes("--report")) {
    // the tables again from the JSON (after its findings were edited), no run
    writeFileSync(join(benchDir, "results/wrapper-host.md"), markdown(JSON.parse(readFileSync(file, "utf8"))));
    return;
  }
  // whether the library's sources differ from the commit, as it is built (checked before the run)
  const dirty = git(["status", "--porcelain", "--", "packages/torch/src", "packages/torch/scripts"]) !== "";
  const { library, bench } = buildBench();
  const requests = await writeRequests();
  log(`${basename(tracePath)}: ${requests.allocs} mallocs on ${requests.streams} stream(s); ${passes} passes x ${rounds} rounds per policy`);
  const results = [];
  for (const policy of policies) {
    const runs = [];
    for (let r = 0; r < rounds; r++) {
      runs.push(JSON.parse(execFileSync(bench, [library, policy, String(passes), requests.path], { encoding: "utf8", maxBuffer: 1 << 24 })));
      const x = runs.at(-1);
      if (x.check !== "" || !x.sameStats) throw new Error(`${policy}: check '${x.check}', same statistics ${x.sameStats}`);
      log(`  ${policy} round ${r}: library ${x.library.laterMalloc.median}/${x.library.laterFree.median} ns, placed ${x.placed.laterMalloc.median}/${x.placed.laterFree.median}, reference ${x.reference.laterMalloc.median}/${x.reference.laterFree.median} (malloc/free medians)`);
    }
    results.push(summarize(policy, runs));
  }
  const all = existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : { runs: {} };
  all.runs[label] = {
    date: new Date().toISOString(),
    commit: git(["rev-parse", "--short", "HEAD"]),
    torchSourcesDirty: dirty,
    machine: `${cpus()[0]?.model ?? "?"} (${cpus().length} cores), Node ${process.version}`,
    trace: basename(tracePath),
    mallocsPerPass: requests.allocs,
    passes,
    rounds,
    results,
  };
  writeFileSync(file, JSON.stringify(all, null, 2) + "\n");
  writeFileSync(join(benchDir, "results/wrapper-host.md"), markdown(all));
  log(`wrote ${file} and wrapper-host.md`);
}

function markdown(all) {
  const out = [
    "# The library's time per call, against its policy's (host driver, no GPU)",
    "",
    "`node packages/torch/bench/wrapper-bench.mjs --label NAME` (wrapper_bench.cc says how). One process per round replays",
    "a shared trace's mallocs and frees (one stream) pass after pass, two ways in turn: through liblakebed_torch.so's",
    "lakebed_malloc / lakebed_free on the host driver, and straight into the same wasm2c module (policyMalloc +",
    "policyBlockDriverAddress, policyFree: the reference), and through the library's own guarded policy calls alone",
    "(WasmPolicy::MallocPlaced / FreeResolved: `placed`). Each call timed from outside with the steady clock.",
    "Figures are nanoseconds, the median over rounds of each round's figure over its later passes (the steady state);",
    "ratio = library / reference, the median over rounds of each round's ratio; wrapper = library - reference and",
    "placed = placed - reference (medians); `inside` is the library's own record (lakebed_latency_read: from before its",
    "lock to after its work).",
    "",
  ];
  for (const [label, run] of Object.entries(all.runs)) {
    out.push(`## ${label}: commit ${run.commit}${run.torchSourcesDirty ? " (with uncommitted packages/torch changes)" : ""}`, "");
    out.push(`${run.date.slice(0, 16).replace("T", " ")} UTC, ${run.machine}; ${run.trace}, ${run.mallocsPerPass.toLocaleString("en-US")} mallocs a pass, ${run.passes} passes x ${run.rounds} rounds${run.note ? `; ${run.note}` : ""}.`, "");
    out.push("| policy | call | library median | p99 | reference median | p99 | ratio median | ratio p99 | wrapper ns | of which placed ns | inside median |");
    out.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const r of run.results) {
      for (const [call, name] of [["laterMalloc", "malloc"], ["laterFree", "free"]]) {
        const c = r[call];
        out.push(`| ${r.policy} | ${name} | ${c.library.median} | ${c.library.p99} | ${c.reference.median} | ${c.reference.p99} | ${c.ratio.median.toFixed(3)} | ${c.ratio.p99.toFixed(3)} | ${c.wrapperNs} | ${c.placedNs} | ${r.libraryInside[call]} |`);
      }
    }
    out.push("");
    if (run.tests) out.push(`Tests: ${run.tests}`, "");
    out.push("Means (the trace's growth and page faults show here, not in the medians): library / reference " +
      run.results.map((r) => `${r.policy} malloc ${Math.round(r.laterMalloc.library.mean)}/${Math.round(r.laterMalloc.reference.mean)}, free ${Math.round(r.laterFree.library.mean)}/${Math.round(r.laterFree.reference.mean)}`).join("; ") + ".", "");
    out.push("First pass (the device calls are made here): library / reference medians " +
      run.results.map((r) => `${r.policy} malloc ${r.firstMalloc.library.median}/${r.firstMalloc.reference.median}, free ${r.firstFree.library.median}/${r.firstFree.reference.median}`).join("; ") + ".", "");
  }
  // what the runs were read to mean (kept in the JSON by hand: a run rewrites the tables, not these)
  if (all.findings?.length) out.push("## Where the time goes", "", ...all.findings.map((f) => `- ${f}`), "");
  return out.join("\n");
}

main().catch((e) => {
  log(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
