// The host tier through the addon and through core-sim's Wasm, on a GPU (or on host memory as a
// dry run): the layer a live replay uses, beside host_tier_bandwidth.cc's raw and DriverCore
// figures from the same device run.
//   1. the addon's copies: Driver.direct.copyOut / copyIn (what the Wasm's imports call) between a
//      VMM range of 2 MiB chunks and the driver's arena, median GB/s per size, 2 MiB .. 1 GiB;
//   2. the Wasm's imported device: expandable segments serve a 1 GiB block, the Wasm copies it
//      out to the arena at its model address, the device bytes are overwritten, the Wasm copies
//      it back, and every byte is compared with what was written.
// Bundled for the device machine by prepare-host-tier.sh (esbuild; core-sim.wasm beside it).
//   node host-tier-check.mjs [--driver cuda|host] [--out DIR] [--max-mib 1024]
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { instantiate, POLICY_CODES } from "@lakebed/core-sim";
import { bindDriver, openDriver } from "@lakebed/native-cuda";

const { values: args } = parseArgs({
  options: {
    driver: { type: "string", default: "cuda" },
    out: { type: "string", default: "host-tier-out" },
    // the largest copy (a dry run on host memory takes a smaller one)
    "max-mib": { type: "string", default: "1024" },
  },
});
const MiB = 1 << 20;
const GiB = 1024 * MiB;
const DEVICE_IMPORTED = 1; // core-sim's assembly/index.ts
const MAX = Number(args["max-mib"]) * MiB;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Bytes from a seeded generator (xorshift32), so a mismatch is not a pattern repeating. */
function seeded(bytes, seed) {
  const words = new Uint32Array(bytes / 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return new Uint8Array(words.buffer);
}

function differing(a, b) {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += a[i] !== b[i];
  return n;
}

function addonCopies(report) {
  const d = openDriver(args.driver);
  const g = d.granularity();
  const va = d.addressReserve(MAX);
  for (let off = 0; off < MAX; off += g) d.map(va + off, g, d.memCreate(g));
  d.setAccess(va, MAX);
  if (!d.hostReserve(MAX)) throw new Error(`hostReserve of ${MAX} bytes refused`);
  const direct = d.direct;
  for (let bytes = 2 * MiB; bytes <= MAX; bytes *= 2) {
    const rounds = Math.max(5, Math.min(40, (4 * GiB) / bytes));
    const out = [];
    const back = [];
    for (let r = 0; r < 2 + rounds; r++) {
      let t0 = performance.now();
      direct.copyOut(va, 0, bytes);
      const tOut = performance.now() - t0;
      t0 = performance.now();
      direct.copyIn(0, va, bytes);
      const tIn = performance.now() - t0;
      if (r >= 2) {
        out.push(tOut * 1e3);
        back.push(tIn * 1e3);
      }
    }
    // bytes per microsecond are MB/s
    report.addon.push({ bytes, rounds, medianGBps: { addonOut: bytes / median(out) / 1e3, addonIn: bytes / median(back) / 1e3 }, us: { addonOut: out, addonIn: back } });
    console.log(`addon ${bytes / MiB} MiB: out ${(bytes / median(out) / 1e3).toFixed(2)} GB/s, in ${(bytes / median(back) / 1e3).toFixed(2)} GB/s`);
  }
  const c = d.counters();
  report.addonCounters = { copyOut: c.calls.copyOut, copyIn: c.calls.copyIn, hostReserve: c.calls.hostReserve, failures: c.failures.copyOut + c.failures.copyIn };
  report.addonTeardown = d.teardown();
}

function wasmRoundTrip(report) {
  const d = openDriver(args.driver);
  const sink = { timed: false, record: () => 0, took: () => {} };
  const bound = bindDriver(d, sink);
  const w = instantiate(bound.imports);
  bound.setMemory(w.memory);
  w.setup(POLICY_CODES.expandable, DEVICE_IMPORTED, 0, d.memGetInfo().total);
  w.start(0, 0);
  const block = w.policyMalloc(MAX, 0);
  if (block < 0) throw new Error(`expandable could not serve ${MAX} bytes`);
  const model = w.policyBlockAddress(block);
  const real = w.policyBlockDriverAddress(block);
  const bytes = w.policyBlockSize(block);
  const written = seeded(bytes, 14);
  d.copyFromHost(real, written);
  if (w.deviceHostReserve(bytes) !== 1) throw new Error("the Wasm's hostReserve was refused");
  let t0 = performance.now();
  w.deviceCopyOut(model, 0, bytes);
  const outMs = performance.now() - t0;
  d.memset(real, 0, bytes);
  t0 = performance.now();
  w.deviceCopyIn(0, model, bytes);
  const inMs = performance.now() - t0;
  const back = new Uint8Array(bytes);
  d.copyToHost(real, back);
  w.deviceHostRelease();
  w.policyFree(block);
  w.policyEmptyCache();
  const bad = differing(back, written);
  report.wasm = { bytes, modelAddress: model, driverAddress: real, bytesDiffering: bad, copyOutMs: outMs, copyInMs: inMs, counters: d.counters().calls };
  report.wasmTeardown = d.teardown();
  console.log(`wasm round trip of ${bytes / MiB} MiB: ${bad} bytes differ; out ${outMs.toFixed(1)} ms, in ${inMs.toFixed(1)} ms`);
  if (bad !== 0) process.exitCode = 1;
}

mkdirSync(args.out, { recursive: true });
const report = { driver: args.driver, addon: [] };
try {
  addonCopies(report);
  wasmRoundTrip(report);
} catch (e) {
  report.error = String(e?.stack ?? e);
  console.error(report.error);
  process.exitCode = 1;
}
writeFileSync(resolve(args.out, "host-tier-addon.json"), JSON.stringify(report, null, 1));
