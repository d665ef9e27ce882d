import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  defaultAllocConf,
  instantiate,
  parseAllocConf,
  POLICY_NAMES,
  POLICY_REGISTRY,
  type PolicyName,
} from "@lakebed/core-sim";
import { checkProperty, formatOutcome } from "./property/properties.js";
import { POLICY_SUITES, suitePolicy } from "./property/policy-suites.js";
import { QUICK_SEED } from "./property/quick-pass.js";
import { lakebed } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * Every policy in core-sim's registry (packages/core-sim/src/policy-registry.ts) reaches every place
 * that runs policies: the Wasm makes it, the CLI replays it and reports its counters, the property
 * harness runs it, the campaign script takes it. A policy registered but missing anywhere fails
 * here, as does a registry entry that says something its code does not do
 * (docs/adding-a-policy.md).
 */
const policiesDir = join(repoRoot, "packages/core-sim/assembly/policies");
const file = (path: string) => readFileSync(join(repoRoot, path), "utf8");
const sample = join(repoRoot, "samples/two_streams.def.pickle.gz");
/** A policy that reads use events replays a trace recorded with them (the access fixtures' smallest). */
const sampleWithUses = join(repoRoot, "test/fixtures/access/mlp_compiled.def.pickle.gz");

/** The AssemblyScript of a policy's folder, every file. */
function policySource(folder: string): string {
  const dir = join(policiesDir, folder);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".ts"))
    .map((f) => readFileSync(join(dir, f), "utf8"))
    .join("\n");
}

const allPolicySources = readdirSync(policiesDir, { recursive: true, encoding: "utf8" })
  .filter((f) => f.endsWith(".ts"))
  .map((f) => readFileSync(join(policiesDir, f), "utf8"))
  .join("\n");

describe("the policy registry", () => {
  it("names each policy once, with the number the Wasm gives it, and every policy the Wasm has", () => {
    expect(new Set(POLICY_NAMES).size).toBe(POLICY_NAMES.length);
    expect(new Set(POLICY_REGISTRY.map((p) => p.code)).size).toBe(POLICY_REGISTRY.length);
    const wasm = instantiate() as unknown as Record<string, unknown>;
    const inWasm = Object.keys(wasm)
      .filter((k) => k.startsWith("POLICY_"))
      .map((k) => [k, (wasm[k] as { value: number }).value] as const);
    expect(Object.fromEntries(inWasm)).toEqual(Object.fromEntries(POLICY_REGISTRY.map((p) => [`POLICY_${p.name.toUpperCase()}`, p.code])));
  });

  it("declares every key the settings parser takes (src/conf.ts) for some policy", () => {
    const parsed = [...file("packages/core-sim/src/conf.ts").matchAll(/^ {6}case "(\w+)":/gm)].map((m) => m[1]);
    const declared = new Set(POLICY_REGISTRY.flatMap((p) => p.settings.map((s) => s.key)));
    expect(parsed.length).toBeGreaterThan(0);
    // backend names PyTorch's allocator backend, which only selects (and refuses cudaMallocAsync)
    expect(parsed.filter((k) => k !== "backend" && !declared.has(k))).toEqual([]);
  });

  for (const p of POLICY_REGISTRY) {
    describe(p.name, () => {
      it("has its folder, the counters its counter() returns, and the invariants its header numbers", () => {
        const source = policySource(p.folder);
        // the counter(i) switch: one case per counter, in the registry's order
        const counter = /\n  counter\(i: i32\): f64 \{([\s\S]*?)\n  \}/.exec(source);
        const cases = counter ? [...counter[1].matchAll(/case (\d+):/g)].map((m) => Number(m[1])) : [];
        expect(cases, `${p.folder}/: counter(i) cases`).toEqual(p.counters.map((_, i) => i));
        // each range's first invariant is stated where it is checked (vms also runs the caching allocator's)
        for (const range of p.invariants) expect(allPolicySources).toContain(`${range.prefix}-1 `);
      });

      it("declares settings the parser knows, with the defaults the parser gives", () => {
        for (const s of p.settings) {
          if (s.default === null) {
            // the key is known: a bad value is refused as a bad value, not as an unknown setting
            expect(() => parseAllocConf(`${s.key}:x`)).toThrow(/./);
            expect(() => parseAllocConf(`${s.key}:x`)).not.toThrow(/unknown setting/);
          } else {
            expect(parseAllocConf(`${s.key}:${s.default}`), `${s.key}:${s.default}`).toEqual(defaultAllocConf());
          }
        }
        for (const conf of p.harnessSettings) expect(() => parseAllocConf(conf)).not.toThrow();
      });

      it("replays through the CLI, which lists it and reports its counters", () => {
        expect(lakebed(["replay", "--help"]).stdout).toContain(p.name);
        const r = lakebed(["replay", "readsUses" in p && p.readsUses ? sampleWithUses : sample, "--policy", p.name, "--json"]);
        expect(r.status, r.stderr).toBe(0);
        const doc = JSON.parse(r.stdout);
        expect(doc.policy).toBe(p.name);
        expect(Object.keys(doc.devices[0].policyCounters)).toEqual([...p.counters]);
      });

      it("runs in the property harness under its defaults and each of its harness settings", () => {
        const suites = POLICY_SUITES.filter((s) => s.policy === p.name).map((s) => s.conf);
        expect(suites).toEqual(["", ...p.harnessSettings]);
        const o = checkProperty(suitePolicy({ policy: p.name as PolicyName, conf: "" }), "commands", { numRuns: 5, seed: QUICK_SEED });
        expect(o.failure, formatOutcome(o)).toBeNull();
      });
    });
  }

  it("is the campaign script's list of policies", () => {
    // an unknown name is refused before any work, with the list the script takes
    const r = spawnSync(process.execPath, [join(repoRoot, "scripts/campaign.mjs"), "--policy", "no-such-policy"], { encoding: "utf8" });
    expect(r.status).toBe(2);
    const listed = /--policy takes (.*) or all, got/.exec(r.stderr)?.[1].split(", ");
    expect(listed).toEqual([...POLICY_NAMES]);
  });
});
