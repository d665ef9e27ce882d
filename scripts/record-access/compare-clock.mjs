// Sets a GPU measurement of check-clock.py (NAME.clock.json) beside the clock the tiering stall
// estimate builds from a recording (core-sim's use-clock.ts): does the scaled clock give the
// recording's last step the time a warm, plain step takes, and does each operator's share of that
// step follow the measured one? Prints one line per trace, and exits 1 when a share is off by more
// than --tolerance (default 0.15 of the step).
//
// Usage: node scripts/record-access/compare-clock.mjs DIR [--tolerance 0.15]
//        DIR holds NAME.clock.json (from check-clock.py); the traces are test/fixtures/access/NAME.*
// Build first: npm run build -w packages/traces -w packages/core-sim
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readTrace, accessRecordBeside, withAccessRecord } from "../../packages/traces/dist/index.js";
import { computationClock } from "../../packages/core-sim/dist/index.js";

const dir = process.argv[2];
const at = process.argv.indexOf("--tolerance");
const tolerance = at > 0 ? Number(process.argv[at + 1]) : 0.15;
if (!dir || !existsSync(dir)) {
  console.error("usage: node scripts/record-access/compare-clock.mjs DIR [--tolerance 0.15]");
  process.exit(2);
}
const fixtures = join(import.meta.dirname, "../../test/fixtures/access");
let worst = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith(".clock.json"))) {
  const name = file.replace(/\.clock\.json$/, "");
  const measured = JSON.parse(readFileSync(join(dir, file), "utf8"));
  const tracePath = join(fixtures, `${name}.pickle.gz`);
  const stats = JSON.parse(readFileSync(join(fixtures, `${name}.stats.json`), "utf8"));
  const trace = withAccessRecord(await readTrace(tracePath), accessRecordBeside(tracePath));
  const d = trace.devices[0];
  const ops = d.access.operators;
  const steps = stats.recorded_steps;
  const clock = computationClock(d, d.access, { stepSeconds: stats.overhead.median_step_seconds.plain, steps });
  // the recording's last step: its share of the operators (they are about equal per step)
  const first = Math.floor((ops.length * (steps - 1)) / steps);
  const t0 = clock[ops.position[first]];
  const t1 = clock[d.events.length];
  const recordedShare = (k) => (clock[ops.position[first + k]] - t0) / Math.max(1e-9, t1 - t0);
  const m = measured.operators;
  const span = Math.max(measured.stepGpuEndUs ?? 0, ...m.map((o) => o.hostEndUs));
  const measuredShare = (k) => (m[k].hostStartUs) / span;
  let maxOff = 0;
  for (let q = 0; q <= 20; q++) {
    const r = recordedShare(Math.min(ops.length - first - 1, Math.round((q / 20) * (ops.length - first - 1))));
    const g = measuredShare(Math.min(m.length - 1, Math.round((q / 20) * (m.length - 1))));
    maxOff = Math.max(maxOff, Math.abs(r - g));
  }
  worst = Math.max(worst, maxOff);
  console.log(`${name}: last recorded step ${((t1 - t0) / 1000).toFixed(1)} ms on the scaled clock, measured warm ${(measured.stepSeconds * 1000).toFixed(1)} ms (stats.json median plain ${(stats.overhead.median_step_seconds.plain * 1000).toFixed(1)} ms); ${ops.length - first} recorded operators against ${m.length} profiled; operator start shares differ by at most ${maxOff.toFixed(3)} of the step`);
}
process.exit(worst > tolerance ? 1 : 0);
