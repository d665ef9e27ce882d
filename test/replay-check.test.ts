import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lakebed } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * `lakebed replay --check [level]`: the policy's invariant checks at either level change nothing
 * in what the replay reports; a level other than local or full is a usage error (exit 2, one line).
 */
const sample = join(repoRoot, "samples/two_streams.def.pickle.gz");

describe("lakebed replay --check", () => {
  for (const policy of ["caching", "vms", "lakebed"]) {
    it(`${policy}: --check, --check local and --check full report what the plain replay does`, () => {
      const plain = lakebed(["replay", sample, "--policy", policy, "--json"]);
      expect(plain.status, plain.stderr).toBe(0);
      for (const level of [[], ["local"], ["full"]]) {
        const checked = lakebed(["replay", sample, "--policy", policy, "--check", ...level, "--json"]);
        expect(checked.status, checked.stderr).toBe(0);
        // everything but the wall time the replay took
        expect({ ...JSON.parse(checked.stdout), seconds: 0 }).toEqual({ ...JSON.parse(plain.stdout), seconds: 0 });
      }
    });
  }

  it("--check with another level is a usage error", () => {
    const r = lakebed(["replay", sample, "--check", "every", "--json"]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("--check takes local (the default) or full, not 'every'");
  });
});
