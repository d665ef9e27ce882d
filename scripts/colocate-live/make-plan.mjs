// Writes the live dedup plan of a scenario (each fingerprinted tenant's parameter digests and what
// it needs alone) as JSON, for a run on another machine: node make-plan.mjs SCENARIO OUT.json
// Needs the built packages (npm run build -w packages/api).
import { writeFileSync } from "node:fs";
import { planLiveDedup, readScenario } from "@lakebed/api";

const [scenario, out] = process.argv.slice(2);
if (!scenario || !out) {
  console.error("usage: node scripts/colocate-live/make-plan.mjs SCENARIO OUT.json");
  process.exit(2);
}
const plan = await planLiveDedup(readScenario(scenario));
writeFileSync(out, JSON.stringify(plan));
console.log(`${out}: ${plan.tenants.length} tenants, ${plan.tenants.map((t) => t.keys.length).join("/")} shared windows, ${plan.tenants.map((t) => (t.aloneBytes / 2 ** 20).toFixed(0)).join("/")} MiB alone`);
