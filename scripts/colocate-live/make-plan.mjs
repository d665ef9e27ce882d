// Writes the live dedup plan of a scenario (each fingerprinted tenant's parameter digests, what it
// needs alone, and its timeline to replay) as JSON, for a run on another machine:
//   node make-plan.mjs SCENARIO OUT.json     (from the repository root)
// The scenario each tenant replays is named relative to the repository root, so that the plan
// holds in another checkout (the device machine's); run it from that checkout's root.
// Needs the built packages (npm run build -w packages/api).
import { writeFileSync } from "node:fs";
import { relative } from "node:path";
import { planLiveDedup, readScenario } from "@lakebed/api";

const [scenario, out] = process.argv.slice(2);
if (!scenario || !out) {
  console.error("usage: node scripts/colocate-live/make-plan.mjs SCENARIO OUT.json");
  process.exit(2);
}
const plan = await planLiveDedup(readScenario(scenario));
for (const t of plan.tenants) if (t.replay) t.replay.scenario = relative(process.cwd(), t.replay.scenario);
writeFileSync(out, JSON.stringify(plan));
console.log(`${out}: ${plan.tenants.length} tenants, ${plan.tenants.map((t) => t.keys.length).join("/")} shared windows, ${plan.tenants.map((t) => (t.aloneBytes / 2 ** 20).toFixed(0)).join("/")} MiB alone`);
