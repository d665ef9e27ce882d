// The GPU check of the native backend, in plain Node (the device machine has no npm or vitest):
//   1. correctness: the cuda driver loads, every call works, N separate 2 MiB chunks stitch into
//      one range, the check pattern survives, OOM is an answer and not a crash, fault injection
//      keeps the tables exact, counters and GPU memory return to where they were after teardown,
//      after exit without teardown, and after SIGKILL;
//   2. latency of every call, median and p99, at four layers: raw C (function pointers from
//      dlopen), C++ DriverCore (no JS), the addon called from JS without the TypeScript layer,
//      and the TypeScript Driver API (validation + addon). Layers 1-2 come from raw_bench.
// Writes gpu-check.json and results.md under --out and prints the tables.
//
//   node packages/native-cuda/bench/gpu-check.mjs [--driver cuda|host] [--out DIR]
//        [--package .device/native-cuda/dist/index.js] [--raw .device/native-cuda/raw_bench]
// --driver host runs the same checks on host memory: a dry run for machines without a GPU.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";

const { values: args } = parseArgs({
  options: {
    driver: { type: "string", default: "cuda" },
    out: { type: "string", default: "gpu-check-out" },
    package: { type: "string", default: ".device/native-cuda/dist/index.js" },
    raw: { type: "string", default: ".device/native-cuda/raw_bench" },
    child: { type: "string" },
  },
});
const kind = args.driver;
const pkg = await import(pathToFileURL(resolve(args.package)).href);
const { openDriver, doctor, OOM, DeviceError, CALL_KINDS } = pkg;
const MiB = 1 << 20;
const GiB = 1024 * MiB;

async function main() {
  mkdirSync(args.out, { recursive: true });
  const report = { driver: kind, doctor: doctor(), checks: [], latency: {}, samples: {} };
  console.log(JSON.stringify(report.doctor));
  if (!report.doctor.drivers[kind].available) {
    console.log(`the ${kind} driver is not available: ${report.doctor.drivers[kind].reason}`);
  }
  // A sentinel driver keeps the context (and its memory) alive across the checks, so memGetInfo
  // before and after a check compare like with like.
  const sentinel = openDriver(kind);
  report.device = sentinel.info().description;
  console.log(`device: ${report.device}`);
  await runChecks(report, sentinel);
  runLatency(report);
  sentinel.teardown();
  writeFileSync(resolve(args.out, "gpu-check.json"), JSON.stringify(report, null, 1));
  const md = markdown(report);
  writeFileSync(resolve(args.out, "results.md"), md);
  console.log(md);
  const failed = report.checks.filter((c) => c.ok === false);
  process.exitCode = failed.length ? 1 : 0;
}

// ---- correctness -------------------------------------------------------------------------------

async function runChecks(report, sentinel) {
  const check = async (name, f) => {
    const t0 = performance.now();
    try {
      const detail = await f();
      report.checks.push({ name, ok: true, detail: detail ?? "", ms: +(performance.now() - t0).toFixed(1) });
    } catch (err) {
      report.checks.push({ name, ok: false, detail: String(err?.stack ?? err).split("\n").slice(0, 3).join(" | ") });
    }
    const last = report.checks.at(-1);
    console.log(`${last.ok ? "PASS" : "FAIL"} ${name}${last.detail ? `: ${last.detail}` : ""}`);
  };
  const assert = (cond, what) => {
    if (!cond) throw new Error(what);
  };
  const freeBytes = () => sentinel.memGetInfo().free;
  const G = sentinel.granularity();

  await check("granularity is 2 MiB", () => {
    assert(G === 2 * MiB, `granularity ${G}`);
    return `${G} bytes`;
  });

  await check("every call works once, counters back to zero after teardown", () => {
    const freeBefore = freeBytes();
    const d = openDriver(kind);
    const h = d.memCreate(GiB);
    assert(h > 0, "memCreate");
    const va = d.addressReserve(GiB);
    d.map(va, GiB, h);
    d.setAccess(va, GiB);
    const src = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
    d.copyFromHost(va + GiB - 4096, src);
    const dst = new Uint8Array(4096);
    d.copyToHost(va + GiB - 4096, dst);
    assert(dst.every((b, i) => b === src[i]), "copy round trip");
    d.memset(va, 0x33, 8192);
    d.copyToHost(va + 4096, dst);
    assert(dst.every((b) => b === 0x33), "memset");
    const info = d.memGetInfo();
    assert(info.total > 0 && info.free <= info.total, "memGetInfo");
    const drop = freeBefore - info.free;
    d.fillPattern(va, GiB, 5);
    assert(d.checkPattern(va, GiB, 5) === 0, "pattern");
    // the host tier: out to the arena, the device bytes overwritten, back
    const before = new Uint8Array(4096);
    d.copyToHost(va, before);
    assert(d.hostReserve(8 * MiB), "hostReserve");
    d.copyOut(va, 4096, 4096);
    d.memset(va, 0, 4096);
    d.copyIn(4096, va, 4096);
    d.copyToHost(va, dst);
    assert(dst.every((b, i) => b === before[i]), "host tier round trip");
    d.hostRelease();
    d.unmap(va, GiB);
    d.addressFree(va, GiB);
    d.memRelease(h);
    const m = d.malloc(3 * MiB + 1);
    d.memset(m, 1, 3 * MiB + 1);
    d.free(m);
    const c = d.counters();
    const unused = CALL_KINDS.filter((k) => c.calls[k] === 0);
    assert(unused.length === 0, `calls never made: ${unused}`);
    assert(d.isValid() === null, "invariants");
    const t = d.teardown();
    const after = d.counters();
    for (const k of ["liveHandles", "liveReservations", "liveMappings", "liveMallocs", "physicalBytes"])
      assert(after[k] === 0, `${k} = ${after[k]}`);
    assert(t.errors.length === 0, `teardown errors ${t.errors}`);
    const freeAfter = freeBytes();
    return `free dropped ${mib(drop)} for a 1 GiB handle; after teardown free is ${mib(freeBefore - freeAfter)} below the start`;
  });

  await check("stitch 64 separate 2 MiB chunks into one range", () => {
    const d = openDriver(kind);
    // create 128 chunks and keep every other one, so the 64 are not one physical run
    const all = Array.from({ length: 128 }, () => d.memCreate(G));
    const chunks = all.filter((_, i) => i % 2 === 0);
    all.filter((_, i) => i % 2 === 1).forEach((h) => d.memRelease(h));
    const n = chunks.length;
    const stitched = d.addressReserve(n * G);
    chunks.forEach((h, i) => d.map(stitched + i * G, G, h));
    d.setAccess(stitched, n * G);
    d.fillPattern(stitched, n * G, 77);
    assert(d.checkPattern(stitched, n * G, 77) === 0, "pattern over the stitched range");
    // give each chunk its own byte through the stitched range ...
    chunks.forEach((_, i) => d.memset(stitched + i * G, i + 1, G));
    // ... and read each one through a second range that maps the chunks in reverse order
    const reversed = d.addressReserve(n * G);
    chunks.forEach((h, i) => d.map(reversed + (n - 1 - i) * G, G, h));
    d.setAccess(reversed, n * G);
    const probe = new Uint8Array(2);
    for (let i = 0; i < n; i++) {
      const at = reversed + (n - 1 - i) * G;
      d.copyToHost(at, probe, 1);
      d.copyToHost(at + G - 1, probe.subarray(1), 1);
      assert(probe[0] === i + 1 && probe[1] === i + 1, `chunk ${i} reads ${probe} through the second range`);
    }
    // a copy across a boundary of the stitched range is contiguous
    const across = new Uint8Array(4);
    d.copyToHost(stitched + 5 * G - 2, across);
    assert(across.join() === "5,5,6,6", `across a boundary: ${across}`);
    assert(d.isValid() === null, "invariants");
    const t = d.teardown();
    assert(t.errors.length === 0 && d.leakReport().clean, "teardown");
    return `${n} chunks, ${t.unmapped} mappings released`;
  });

  await check("a map covers its whole handle at offset 0; part of one or an offset is refused", () => {
    // Run 2 (bench/results/h100-run2.md) sent a 2 MiB map of a 4 MiB handle to the driver:
    // CUDA_ERROR_NOT_SUPPORTED, as for a non-zero offset (run 1). Both drivers now refuse these
    // before the driver is called, so what a policy does on host memory also works here.
    const d = openDriver(kind);
    const h = d.memCreate(2 * G);
    const whole = d.addressReserve(2 * G);
    d.map(whole, 2 * G, h);
    d.setAccess(whole, 2 * G);
    d.fillPattern(whole, 2 * G, 4);
    assert(d.checkPattern(whole, 2 * G, 4) === 0, "whole-handle map");
    const codes = [];
    for (const [bytes, offset] of [[G, 0], [G, G]]) {
      try {
        d.map(d.addressReserve(G), bytes, h, offset);
        codes.push("accepted");
      } catch (err) {
        assert(err instanceof DeviceError, "not a DeviceError");
        codes.push(err.code);
      }
    }
    assert(codes.join() === "INVALID,INVALID", `part / offset: ${codes}`);
    assert(d.isValid() === null, "invariants");
    d.teardown();
    return "whole map works; part of a handle and an offset: INVALID before the driver";
  });

  await check("out of memory is an answer, not a crash", () => {
    const d = openDriver(kind);
    const total = d.memGetInfo().total;
    const tooMuch = Math.ceil((2 * total) / G) * G;
    const results = [];
    if (kind === "cuda") {
      // beyond the device: the driver itself says out of memory
      assert(d.memCreate(tooMuch) === OOM, "memCreate beyond the device");
      assert(d.malloc(tooMuch) === OOM, "malloc beyond the device");
      results.push(`driver OOM for ${mib(tooMuch)}`);
    }
    const capped = openDriver(kind, { capacity: 8 * MiB });
    for (let i = 0; i < 4; i++) assert(capped.memCreate(G) > 0, "within the capacity");
    assert(capped.memCreate(G) === OOM && capped.malloc(1) === OOM, "capacity OOM");
    results.push(`capacity OOM after ${capped.counters().liveHandles} chunks`);
    const c = d.counters();
    assert(c.liveHandles === 0 && c.liveMallocs === 0, "nothing recorded for an OOM");
    d.teardown();
    capped.teardown();
    return results.join("; ");
  });

  await check("fault injection on map and setAccess keeps the tables exact", () => {
    const d = openDriver(kind, { failEvery: { map: 3, setAccess: 2 } });
    const va = d.addressReserve(16 * G);
    let mapped = 0;
    let failures = 0;
    for (let i = 0; i < 16; i++) {
      const h = d.memCreate(G);
      try {
        d.map(va + mapped * G, G, h);
        mapped++;
      } catch (err) {
        assert(err instanceof DeviceError && err.code === "INJECTED", `unexpected ${err}`);
        failures++;
        d.memRelease(h);
      }
      assert(d.counters().liveMappings === mapped, "liveMappings");
      assert(d.isValid() === null, "invariants");
    }
    let accessOk = false;
    for (let tries = 0; tries < 3 && !accessOk; tries++) {
      try {
        d.setAccess(va, mapped * G);
        accessOk = true;
      } catch (err) {
        assert(err.code === "INJECTED", `unexpected ${err}`);
      }
    }
    d.fillPattern(va, mapped * G, 3);
    assert(d.checkPattern(va, mapped * G, 3) === 0, "pattern");
    const t = d.teardown();
    assert(t.errors.length === 0 && d.leakReport().clean, "teardown");
    return `${failures} injected map failures, ${mapped} chunks mapped and verified`;
  });

  await check("a SIGKILLed process gives all its GPU memory back", async () => {
    const before = freeBytes();
    const child = spawn(process.execPath, [process.argv[1], ...passArgs(), "--child", "wait"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const line = await firstLine(child);
    assert(line === "ready 0", `child said ${line}`);
    const during = freeBytes();
    const exited = new Promise((r) => child.on("exit", r));
    child.kill("SIGKILL");
    await exited;
    const after = await settle(freeBytes, before);
    if (kind === "cuda") {
      assert(before - during >= 4 * GiB, `the child held only ${mib(before - during)}`);
      assert(before - after < 64 * MiB, `${mib(before - after)} not given back`);
    }
    return `free: before ${mib(before)}, child holding ${mib(during)}, after kill ${mib(after)}`;
  });

  await check("exit without teardown: the exit cleanup releases everything", async () => {
    const before = freeBytes();
    const r = spawnSync(process.execPath, [process.argv[1], ...passArgs(), "--child", "return"], {
      env: { ...process.env, LAKEBED_NATIVE_DEBUG: "1" },
      encoding: "utf8",
    });
    assert(r.status === 0, `exit ${r.status}: ${r.stderr}`);
    const expected = `lakebed-native: exit cleanup of ${kind} driver: unmapped 4, freed 1 reservations, released 4 handles, freed 1 mallocs, 0 errors`;
    assert(r.stderr.includes(expected), `stderr: ${r.stderr}`);
    const after = await settle(freeBytes, before);
    if (kind === "cuda") assert(before - after < 64 * MiB, `${mib(before - after)} not given back`);
    return expected.replace("lakebed-native: ", "");
  });

  await check("a terminated worker thread gives its memory back (env cleanup hook)", async () => {
    const before = freeBytes();
    const code = `
      const { parentPort } = require("node:worker_threads");
      import(${JSON.stringify(pathToFileURL(resolve(args.package)).href)}).then(({ openDriver }) => {
        const d = (globalThis.heldDriver = openDriver(${JSON.stringify(kind)}));
        const bytes = 1024 * 1024 * 1024;
        const va = d.addressReserve(bytes);
        d.map(va, bytes, d.memCreate(bytes));
        d.setAccess(va, bytes);
        parentPort.postMessage(d.counters().liveMappings);
        setInterval(() => {}, 1000);
      });`;
    const worker = new Worker(code, { eval: true });
    const mappings = await new Promise((r, reject) => {
      worker.once("message", r);
      worker.once("error", reject);
    });
    const during = freeBytes();
    await worker.terminate();
    const after = await settle(freeBytes, before);
    if (kind === "cuda") {
      assert(before - during >= 1024 * MiB, `the worker held only ${mib(before - during)}`);
      assert(before - after < 64 * MiB, `${mib(before - after)} not given back`);
    }
    return `${mappings} mapping; free: before ${mib(before)}, worker holding ${mib(during)}, after terminate ${mib(after)}`;
  });
}

function passArgs() {
  return ["--driver", kind, "--package", args.package, "--raw", args.raw, "--out", args.out];
}

function firstLine(child) {
  return new Promise((resolveLine, reject) => {
    let out = "";
    child.stdout.on("data", (c) => {
      out += c;
      if (out.includes("\n")) resolveLine(out.split("\n")[0]);
    });
    child.on("exit", (code) => reject(new Error(`child exited (${code}) before it was ready`)));
  });
}

/** Polls free memory until it is back near `target` (the driver frees asynchronously), 10 s max. */
async function settle(freeBytes, target) {
  let free = freeBytes();
  for (let i = 0; i < 100 && target - free >= 64 * MiB; i++) {
    await new Promise((r) => setTimeout(r, 100));
    free = freeBytes();
  }
  return free;
}

function mib(bytes) {
  return `${(bytes / MiB).toFixed(0)} MiB`;
}

// ---- latency -------------------------------------------------------------------------------------

const SMALL_N = 300;
const LARGE_N = 40;
const WARMUP = 10;
const STITCH_CHUNKS = 32;
const STITCH_ROUNDS = 20;

/** The same plan as bench/raw_bench.cc RunPlan; `ops` adapts one layer's calls. */
function runPlan(ops) {
  const s = {};
  const timed = (name, rec, f) => {
    const t0 = process.hrtime.bigint();
    const r = f();
    const t1 = process.hrtime.bigint();
    if (rec) (s[name] ??= []).push(Number(t1 - t0) / 1000);
    return r;
  };
  for (const [label, bytes, n] of [[" 2 MiB", 2 * MiB, SMALL_N], [" 512 MiB", 512 * MiB, LARGE_N]]) {
    for (let i = 0; i < WARMUP + n; i++) {
      const rec = i >= WARMUP;
      const h = timed("memCreate" + label, rec, () => ops.memCreate(bytes));
      timed("memRelease" + label, rec, () => ops.memRelease(h));
      const va = timed("addressReserve" + label, rec, () => ops.addressReserve(bytes));
      timed("addressFree" + label, rec, () => ops.addressFree(va, bytes));
      const m = timed("malloc" + label, rec, () => ops.malloc(bytes));
      timed("free" + label, rec, () => ops.free(m));
    }
    const h = ops.memCreate(bytes);
    const va = ops.addressReserve(bytes);
    for (let i = 0; i < WARMUP + n; i++) {
      const rec = i >= WARMUP;
      timed("map" + label, rec, () => ops.map(va, bytes, h));
      timed("setAccess" + label, rec, () => ops.setAccess(va, bytes));
      timed("unmap" + label, rec, () => ops.unmap(va, bytes));
    }
    ops.addressFree(va, bytes);
    ops.memRelease(h);
  }
  {
    const va = ops.malloc(2 * MiB);
    const host = new Uint8Array(4096).fill(1);
    for (let i = 0; i < WARMUP + SMALL_N; i++) {
      const rec = i >= WARMUP;
      timed("copyFromHost 4 KiB", rec, () => ops.copyFromHost(va, host));
      timed("copyToHost 4 KiB", rec, () => ops.copyToHost(va, host));
      timed("memset 2 MiB", rec, () => ops.memset(va, 2 * MiB));
      timed("memGetInfo", rec, () => ops.memGetInfo());
    }
    ops.free(va);
  }
  {
    const G = 2 * MiB;
    const range = STITCH_CHUNKS * G;
    const chunks = Array.from({ length: STITCH_CHUNKS }, () => ops.memCreate(G));
    const va = ops.addressReserve(range);
    for (let round = 0; round < 2 + STITCH_ROUNDS; round++) {
      const rec = round >= 2;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < STITCH_CHUNKS; i++) ops.map(va + i * G, G, chunks[i]);
      ops.setAccess(va, range);
      const t1 = process.hrtime.bigint();
      if (rec) (s["stitch 32 x 2 MiB, per chunk"] ??= []).push(Number(t1 - t0) / 1000 / STITCH_CHUNKS);
      timed("unmap 32-chunk range", rec, () => ops.unmap(va, range));
    }
    ops.addressFree(va, range);
    for (const h of chunks) ops.memRelease(h);
  }
  return s;
}

function apiOps(d) {
  return {
    memCreate: (b) => d.memCreate(b),
    memRelease: (h) => d.memRelease(h),
    addressReserve: (b) => d.addressReserve(b),
    addressFree: (va, b) => d.addressFree(va, b),
    map: (va, b, h) => d.map(va, b, h),
    setAccess: (va, b) => d.setAccess(va, b),
    unmap: (va, b) => d.unmap(va, b),
    malloc: (b) => d.malloc(b),
    free: (va) => d.free(va),
    copyFromHost: (va, buf) => d.copyFromHost(va, buf),
    copyToHost: (va, buf) => d.copyToHost(va, buf),
    memset: (va, b) => d.memset(va, 0x5a, b),
    memGetInfo: () => d.memGetInfo(),
  };
}

function addonOps(n) {
  return {
    memCreate: (b) => n.memCreate(b),
    memRelease: (h) => n.memRelease(h),
    addressReserve: (b) => n.addressReserve(b, 0),
    addressFree: (va, b) => n.addressFree(va, b),
    map: (va, b, h) => n.map(va, b, h, 0),
    setAccess: (va, b) => n.setAccess(va, b),
    unmap: (va, b) => n.unmap(va, b),
    malloc: (b) => n.malloc(b),
    free: (va) => n.free(va),
    copyFromHost: (va, buf) => n.copyFromHost(va, buf, buf.byteLength),
    copyToHost: (va, buf) => n.copyToHost(va, buf, buf.byteLength),
    memset: (va, b) => n.memset(va, 0x5a, b),
    memGetInfo: () => n.memGetInfo(),
  };
}

function stats(us) {
  const sorted = [...us].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { n: us.length, median: at(0.5), p99: at(0.99), min: sorted[0], mean: us.reduce((a, b) => a + b, 0) / us.length };
}

/** Two rounds, the second in the reverse order of layers, so that neither the order nor one
 * unlucky round decides a comparison; the tables pool both rounds and show each round's median. */
function runLatency(report) {
  const rounds = [{}, {}];
  const binding = createRequire(import.meta.url)(report.doctor.addon.path);
  const runners = {
    raw: (round) => {
      if (kind !== "cuda" || !existsSync(args.raw)) return;
      const r = spawnSync(resolve(args.raw), { encoding: "utf8", maxBuffer: 64 * MiB });
      if (r.status !== 0) {
        report.checks.push({ name: "raw_bench ran", ok: false, detail: r.stderr.trim() });
        return;
      }
      const raw = JSON.parse(r.stdout);
      report.rawBench = { device: raw.device, driverVersion: raw.driverVersion };
      Object.assign(round, raw.layers); // raw and core
    },
    addon: (round) => {
      // the addon without the TypeScript layer: the module the package loaded, called directly
      const native = new binding.Driver(kind, 0, 0);
      round.addon = runPlan(addonOps(native));
      native.teardown();
    },
    api: (round) => {
      const d = openDriver(kind);
      round.api = runPlan(apiOps(d));
      const leftover = d.teardown();
      const released = leftover.unmapped + leftover.addressesFreed + leftover.handlesReleased + leftover.mallocsFreed;
      if (released !== 0) report.checks.push({ name: "the benchmark leaves nothing behind", ok: false, detail: JSON.stringify(leftover) });
    },
  };
  for (const layer of ["raw", "addon", "api"]) runners[layer](rounds[0]);
  for (const layer of ["api", "addon", "raw"]) runners[layer](rounds[1]);
  report.checks.push({ name: "the benchmark leaves nothing behind", ok: !report.checks.some((c) => c.name === "the benchmark leaves nothing behind"), detail: "both rounds, every layer" });
  const layers = {};
  for (const round of rounds) {
    for (const [layer, ops] of Object.entries(round)) {
      layers[layer] ??= {};
      for (const [op, us] of Object.entries(ops)) (layers[layer][op] ??= []).push(...us);
    }
  }
  for (const [layer, ops] of Object.entries(layers)) {
    report.latency[layer] = Object.fromEntries(Object.entries(ops).map(([op, us]) => [op, stats(us)]));
  }
  report.roundMedians = rounds.map((round) =>
    Object.fromEntries(Object.entries(round).map(([layer, ops]) => [layer, Object.fromEntries(Object.entries(ops).map(([op, us]) => [op, stats(us).median]))])),
  );
  report.samples = rounds;
}

// ---- report --------------------------------------------------------------------------------------

// DESIGN.md's H100 figures (driver 580, CUDA 13; malloc/free there are cudaMalloc/cudaFree).
const DESIGN_US = {
  "memCreate 2 MiB": "14", "memCreate 512 MiB": "25", "addressReserve 2 MiB": "1-8",
  "addressReserve 512 MiB": "1-8", "map 2 MiB": "1-2", "map 512 MiB": "1-2",
  "setAccess 2 MiB": "35", "setAccess 512 MiB": "60", "unmap 2 MiB": "23-30", "unmap 512 MiB": "23-30",
  "memRelease 2 MiB": "17", "memRelease 512 MiB": "369", "malloc 2 MiB": "56", "malloc 512 MiB": "118",
  "free 2 MiB": "48", "free 512 MiB": "417", "stitch 32 x 2 MiB, per chunk": "23-35",
};

function markdown(report) {
  const f = (x) => (x === undefined ? "" : x < 10 ? x.toFixed(2) : x.toFixed(1));
  const lines = [];
  lines.push(`device: ${report.device}; driver: ${report.driver}`);
  lines.push("", "| check | result | detail |", "|---|---|---|");
  for (const c of report.checks) lines.push(`| ${c.name} | ${c.ok ? "pass" : "FAIL"} | ${String(c.detail).replaceAll("|", "/")} |`);
  const order = ["raw", "core", "addon", "api"].filter((l) => report.latency[l]);
  const names = { raw: "raw C", core: "C++ core", addon: "addon from JS", api: "TS Driver API" };
  lines.push("", "Latency per call, microseconds, median / p99 of both rounds pooled (one call at a time, after warm-up):", "");
  lines.push(`| call | ${order.map((l) => names[l]).join(" | ")} | API - raw (median) | DESIGN.md |`);
  lines.push(`|---|${order.map(() => "---:").join("|")}|---:|---:|`);
  const ops = Object.keys(report.latency[order.at(-1)] ?? {}).sort();
  for (const op of ops) {
    const cells = order.map((l) => {
      const s = report.latency[l][op];
      return s ? `${f(s.median)} / ${f(s.p99)}` : "";
    });
    const raw = report.latency.raw?.[op]?.median;
    const api = report.latency.api?.[op]?.median;
    const over = raw !== undefined && api !== undefined ? f(api - raw) : "";
    lines.push(`| ${op} | ${cells.join(" | ")} | ${over} | ${DESIGN_US[op] ?? ""} |`);
  }
  lines.push("", "Repeatability: each round's median, round 1 / round 2 (round 2 ran the layers in reverse order):", "");
  lines.push(`| call | ${order.map((l) => names[l]).join(" | ")} |`);
  lines.push(`|---|${order.map(() => "---:").join("|")}|`);
  for (const op of ops) {
    const cells = order.map((l) => report.roundMedians.map((r) => f(r[l]?.[op])).join(" / "));
    lines.push(`| ${op} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n") + "\n";
}

// ---- entry: the check, or a child process that holds memory, then is killed or ends without
// teardown (runs last, once every constant above is initialized) -------------------------------
if (args.child) {
  const d = openDriver(kind);
  const G = d.granularity();
  const handleBytes = 512 * G; // 1 GiB each
  const va = d.addressReserve(4 * handleBytes);
  for (let i = 0; i < 4; i++) d.map(va + i * handleBytes, handleBytes, d.memCreate(handleBytes));
  d.setAccess(va, 4 * handleBytes);
  d.fillPattern(va, 4 * handleBytes, 9);
  d.malloc(G);
  globalThis.heldDriver = d; // reachable to the end, so exit cleanup (not GC) releases it
  process.stdout.write(`ready ${d.checkPattern(va, 4 * handleBytes, 9)}\n`);
  if (args.child === "wait") setInterval(() => {}, 1000);
  // "return": end without teardown; the exit cleanup must release everything
} else {
  await main();
}

