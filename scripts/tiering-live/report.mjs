// Writes packages/native-cuda/bench/results/tiering-live-h200.md's tables from run.sh's archive,
// unpacked: node scripts/tiering-live/report.mjs DIR (DIR holds gpu.txt, bandwidth.json, *.json).
import { readFileSync } from "node:fs";
import { join } from "node:path";

const dir = process.argv[2];
const read = (f) => JSON.parse(readFileSync(join(dir, f), "utf8"));
const bw = read("bandwidth.json");
const raw2 = bw.copies.find((c) => c.bytes === 2 * 1024 * 1024).medianGBps;
const GB = (bytes, s) => bytes / 1e9 / s;
const GiB = (bytes) => bytes / 1024 ** 3;
const f2 = (x) => x.toFixed(2);
const out = [];
out.push("| trace | capacity | events | live replay | copies out / in | GiB out / in | driver GB/s out / in | / raw 2 MiB out / in | JS-side GB/s out / in | cost model out / in | round trips compared | frees with pages on host | verified allocations | calls = simulator's | leaks, arena after teardown |");
out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
for (const name of ["llama_lora.exp", "gpt2_train.def", "gpt2_ckpt.def"]) {
  const j = read(`${name}.tiering.json`);
  const d = j.devices[0];
  const h = d.hostTier;
  const o = GB(h.copyOut.bytes, h.copyOut.driverSeconds);
  const i = GB(h.copyIn.bytes, h.copyIn.driverSeconds);
  const leaks = d.leaks.handles + d.leaks.reservations + d.leaks.mappings + d.leaks.mallocs;
  out.push(
    `| ${name} | ${f2(GiB(j.capacityBytes))} GiB | ${j.events.toLocaleString("en")} | ${f2(j.seconds)} s | ${h.copyOut.calls} / ${h.copyIn.calls} | ${f2(GiB(h.copyOut.bytes))} / ${f2(GiB(h.copyIn.bytes))} | ${f2(o)} / ${f2(i)} | ${f2(o / raw2.rawOut)} / ${f2(i / raw2.rawIn)} | ${f2(GB(h.copyOut.bytes, h.copyOut.seconds))} / ${f2(GB(h.copyIn.bytes, h.copyIn.seconds))} | ${(h.simulated.copyOutSeconds * 1000).toFixed(1)} / ${(h.simulated.copyInSeconds * 1000).toFixed(1)} ms | ${h.roundTrip.roundTrips} (${f2(GiB(h.roundTrip.bytesCompared))} GiB), ${h.roundTrip.failures} changed | ${h.roundTrip.checksWithPagesOnHost} | ${d.verifiedAllocations}, ${d.verifyFailures} changed | ${h.simulated.divergence === null ? "yes" : "no"} | ${leaks}, ${h.arenaLeftAfterTeardown} B |`,
  );
}
out.push("");
const s = read("shrink.gpt2_ckpt.json");
const sh = s.devices[0].hostTier.liveShrinks[0];
out.push(`shrink: ${JSON.stringify(sh)}`);
out.push(`raw 2 MiB: ${JSON.stringify(raw2)}`);
console.log(out.join("\n"));
