// Writes packages/native-cuda/bench/results/tiering-live-h200.md's tables from run.sh's archive,
// unpacked: node scripts/tiering-live/report.mjs DIR (DIR holds gpu.txt, bandwidth.json, *.json).
//
// What the copy ratio compares: the policy copies runs of adjacent 2 MiB pages in one call, so its
// copies have many sizes. For each copy, the time a raw pinned cuMemcpy of the same size took in
// the same run (bench/host_tier_bandwidth, measured at 2 MiB, 4 MiB, ... 1 GiB; a size between two
// measured ones takes the time on the line between them, as a copy costs a latency plus its bytes
// over the bandwidth) is summed over the replay's copies; that sum over the replay's own summed
// driver time (the copy function alone, clocked as the bench clocks its raw copies) is the ratio:
// the replay's bandwidth over raw bandwidth for the very same sizes, each copy weighted by its
// bytes. Two raw figures per size: the median of the bench's copies (`median`) and their mean
// (`mean`, the like of the replay's sum); and per size, the replay's median copy against the raw
// median of that size.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node scripts/tiering-live/report.mjs DIR");
  process.exit(1);
}
const read = (f) => JSON.parse(readFileSync(join(dir, f), "utf8"));
const out = [];
try {
  const s = read("shrink.gpt2_ckpt.json");
  out.push(`shrink: ${JSON.stringify(s.devices[0].hostTier.liveShrinks[0])}`, "");
} catch (e) {
  out.push(`shrink: not run: ${e.message}`, "");
}
if (!existsSync(join(dir, "bandwidth.json"))) {
  console.log(out.join("\n"));
  process.exit(0);
}
const bw = read("bandwidth.json");
const MiB = 1024 * 1024;
const GiB = (bytes) => bytes / 1024 ** 3;
const f2 = (x) => x.toFixed(2);
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;

/** raw microseconds of a copy of `bytes` one way ("Out"/"In"), by the statistic `stat`, on the line between measured sizes */
function rawMicros(bytes, way, stat) {
  const points = bw.copies.map((c) => [c.bytes, stat(c.us[`raw${way}`])]);
  let i = points.findIndex(([b]) => b >= bytes);
  if (i < 0) i = points.length - 1;
  if (i === 0) i = 1;
  const [b0, t0] = points[i - 1];
  const [b1, t1] = points[i];
  return t0 + ((t1 - t0) * (bytes - b0)) / (b1 - b0);
}

/** the replay's copies one way, against raw copies of the same sizes */
function against(copies, way) {
  let rawMedian = 0;
  let rawMean = 0;
  for (const s of copies.bySize) {
    rawMedian += s.calls * rawMicros(s.bytes, way, median);
    rawMean += s.calls * rawMicros(s.bytes, way, mean);
  }
  const replay = copies.driverSeconds * 1e6;
  const two = copies.bySize.find((s) => s.bytes === 2 * MiB);
  return {
    gbps: copies.bytes / 1e3 / replay,
    rawMedianGbps: copies.bytes / 1e3 / rawMedian,
    vsMedian: rawMedian / replay,
    vsMean: rawMean / replay,
    pagesPerCopy: copies.bytes / (2 * MiB) / copies.calls,
    twoMiB: two ? { calls: two.calls, ratio: rawMicros(2 * MiB, way, median) / two.medianDriverMicros } : null,
  };
}

const rawAt = (bytes) => bw.copies.find((c) => c.bytes === bytes).medianGBps;
out.push(`raw medians, GB/s out / in: ${bw.copies.map((c) => `${c.bytes / MiB} MiB ${f2(c.medianGBps.rawOut)} / ${f2(c.medianGBps.rawIn)}`).join("; ")}`);
out.push(`DriverCore / raw at 2 MiB: ${f2(rawAt(2 * MiB).driverOut / rawAt(2 * MiB).rawOut)} / ${f2(rawAt(2 * MiB).driverIn / rawAt(2 * MiB).rawIn)}`);
for (const c of bw.interleaved ?? []) {
  const raw = rawAt(c.bytes);
  const m = c.medianGBps;
  out.push(
    `interleaved ${c.bytes / MiB} MiB, medians GB/s (/ raw back to back): driver out ${f2(m.driverOut)} (${f2(m.driverOut / raw.rawOut)}), in ${f2(m.driverIn)} (${f2(m.driverIn / raw.rawIn)}); raw after 2 ms idle out ${f2(m.rawOutAfterIdle)} (${f2(m.rawOutAfterIdle / raw.rawOut)}), in ${f2(m.rawInAfterIdle)} (${f2(m.rawInAfterIdle / raw.rawIn)})`,
  );
}
out.push("");
out.push("| trace | capacity | events | live replay | copies out / in | pages a copy out / in | GiB out / in | driver GB/s out / in | raw GB/s, same sizes (median) out / in | ratio to raw median, same sizes, out / in | ratio to raw mean, same sizes, out / in | 2 MiB copies: median / raw median, out / in | JS-side GB/s out / in | cost model out / in | round trips compared | frees with pages on host | verified allocations | calls = simulator's | leaks, arena after teardown |");
out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
for (const name of ["llama_lora.exp", "gpt2_train.def", "gpt2_ckpt.def"]) {
  let j;
  try {
    j = read(`${name}.tiering.json`);
  } catch (e) {
    out.push(`| ${name} | not run: ${e.message} |`);
    continue;
  }
  const d = j.devices[0];
  const h = d.hostTier;
  const o = against(h.copyOut, "Out");
  const i = against(h.copyIn, "In");
  const two = (x) => (x.twoMiB ? `${f2(x.twoMiB.ratio)} (${x.twoMiB.calls})` : "-");
  const GB = (bytes, s) => bytes / 1e9 / s;
  const leaks = d.leaks.handles + d.leaks.reservations + d.leaks.mappings + d.leaks.mallocs;
  out.push(
    `| ${name} | ${f2(GiB(j.capacityBytes))} GiB | ${j.events.toLocaleString("en")} | ${f2(j.seconds)} s | ${h.copyOut.calls} / ${h.copyIn.calls} | ${f2(o.pagesPerCopy)} / ${f2(i.pagesPerCopy)} | ${f2(GiB(h.copyOut.bytes))} / ${f2(GiB(h.copyIn.bytes))} | ${f2(o.gbps)} / ${f2(i.gbps)} | ${f2(o.rawMedianGbps)} / ${f2(i.rawMedianGbps)} | ${f2(o.vsMedian)} / ${f2(i.vsMedian)} | ${f2(o.vsMean)} / ${f2(i.vsMean)} | ${two(o)} / ${two(i)} | ${f2(GB(h.copyOut.bytes, h.copyOut.seconds))} / ${f2(GB(h.copyIn.bytes, h.copyIn.seconds))} | ${(h.simulated.copyOutSeconds * 1000).toFixed(1)} / ${(h.simulated.copyInSeconds * 1000).toFixed(1)} ms | ${h.roundTrip.roundTrips} (${f2(GiB(h.roundTrip.bytesCompared))} GiB), ${h.roundTrip.failures} changed | ${h.roundTrip.checksWithPagesOnHost} | ${d.verifiedAllocations}, ${d.verifyFailures} changed | ${h.simulated.divergence === null ? "yes" : "no"} | ${leaks}, ${h.arenaLeftAfterTeardown} B |`,
  );
  out.push(`| | copy sizes out: ${h.copyOut.bySize.map((s) => `${s.bytes / MiB} MiB x${s.calls}`).join(", ")}; in: ${h.copyIn.bySize.map((s) => `${s.bytes / MiB} MiB x${s.calls}`).join(", ")} |`);
}
console.log(out.join("\n"));
