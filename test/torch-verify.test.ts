import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { lakebed } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * `lakebed verify` on snapshots liblakebed_torch wrote on an H200 (packages/torch/bench/results/
 * h200-2026-12-02-c: GPT-2 and Llama LoRA under each policy through the library). Such a snapshot
 * names its policy (allocator_settings' lakebed_policy) and verify checks it against that policy's
 * own segment events by default, or against --policy's. These snapshots predate the device total in
 * the snapshot (lakebed_device_total): vms sizes from the device, so --capacity gives the H200's.
 */
const results = resolve(repoRoot, "packages/torch/bench/results/h200-2026-12-02-c");

describe("lakebed verify --policy on the library's recorded snapshots", () => {
  it("vms's snapshot verifies against vms's own segment events by default, and not against caching's", () => {
    const file = resolve(results, "llama_lora.vms.pickle.gz");
    const r = lakebed(["verify", file, "--capacity", "139GiB", "--json"], 120_000);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ match: true, policy: "vms", recordedPolicy: "vms" });
    expect(doc.devices[0].segmentEventsCompared).toBeGreaterThan(30);
    // ": MATCH", as "MISMATCH (policy vms)" holds "MATCH (policy vms)" too
    const named = lakebed(["verify", file, "--capacity", "139GiB", "--policy", "vms"], 120_000);
    expect(named.stdout).toContain(": MATCH (policy vms)");
    expect(named.status).toBe(0);
    const other = lakebed(["verify", file, "--capacity", "139GiB", "--policy", "caching"], 120_000);
    expect(other.status).toBe(1);
    expect(other.stdout).toContain("MISMATCH (policy caching)");
    expect(other.stdout).toMatch(/first diverging segment event #\d+: the library \(vms\) did take 0x[0-9a-f]+ \d+ B after \d+ requests/);
  });
  it("caching's and expandable's verify against their own policies (PyTorch's allocator, emulated)", () => {
    for (const [file, policy] of [["gpt2_ckpt.caching.pickle.gz", "caching"], ["llama_lora.expandable.pickle.gz", "expandable"]]) {
      const r = lakebed(["verify", resolve(results, file)], 120_000);
      expect(r.stdout, file).toContain(`: MATCH (policy ${policy})`);
      expect(r.status).toBe(0);
    }
  });
  it("a policy that does not exist is one line naming the choices, exit status 2", () => {
    const r = lakebed(["verify", resolve(results, "gpt2_ckpt.caching.pickle.gz"), "--policy", "nope"]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^lakebed: --policy: unknown policy 'nope' \(choose one of caching, expandable, vms, lakebed/)]);
  });
});

/**
 * `lakebed replay` without --policy chooses as verify does (api's replay.ts resolvePolicy): the
 * policy a library snapshot names, with the settings it recorded (h200-2026-12-02-d: lakebed with
 * lakebed_torch's default lakebed_large_page_mb:4), else PyTorch's allocator under the recorded
 * settings; the first line and --json's policySource say which and why.
 */
describe("lakebed replay without --policy", () => {
  const replayJson = (args: string[]) => {
    const r = lakebed(["replay", ...args, "--json"], 120_000);
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };
  it("a library snapshot replays under the policy it names, with its recorded settings, as verify chooses", () => {
    const file = resolve(repoRoot, "packages/torch/bench/results/h200-2026-12-02-d/gpt2_ckpt.lakebed.pickle.gz");
    const chosen = replayJson([file]);
    expect(chosen).toMatchObject({ policy: "lakebed", policySource: "recorded", conf: "lakebed_large_page_mb:4" });
    const named = replayJson([file, "--policy", "lakebed"]);
    expect(named.policySource).toBe("requested");
    expect(chosen.devices).toEqual(named.devices);
    // the lakebed policy's figures, not caching's, and at the recorded 4 MiB pages, not the policy's 20 MiB default
    expect(chosen.devices[0].peakReservedBytes).not.toBe(replayJson([file, "--policy", "caching"]).devices[0].peakReservedBytes);
    expect(chosen.devices[0].stats).not.toEqual(replayJson([file, "--policy", "lakebed", "--conf", "lakebed_large_page_mb:20"]).devices[0].stats);
    expect(chosen.devices[0].peakReservedBytes / chosen.devices[0].peakAllocatedBytes).toBeLessThan(1.03);
    const text = lakebed(["replay", file], 120_000);
    expect(text.status).toBe(0);
    expect(text.stdout.split("\n")[0]).toMatch(/: policy lakebed \(recorded in the snapshot\), settings lakebed_large_page_mb:4, capacity unlimited$/);
    const verified = lakebed(["verify", file, "--json"], 120_000);
    expect(JSON.parse(verified.stdout)).toMatchObject({ policy: "lakebed", recordedPolicy: "lakebed" });
  });
  it("a PyTorch snapshot still replays under caching, or expandable under expandable_segments", () => {
    for (const [name, policy] of [["gc_nocap", "caching"], ["exp_msplit", "expandable"]]) {
      const file = resolve(repoRoot, `test/fixtures/recorded/${name}.pickle.gz`);
      const chosen = replayJson([file]);
      expect(chosen, name).toMatchObject({ policy, policySource: "pytorch" });
      expect(chosen.devices, name).toEqual(replayJson([file, "--policy", policy]).devices);
      expect(lakebed(["replay", file]).stdout.split("\n")[0]).toContain(`: policy ${policy} (PyTorch's allocator: the trace names no policy)`);
    }
  });
  it("a PyTorch snapshot under --conf's settings: the first line does not call them the recorded ones", () => {
    // gc_nocap recorded garbage_collection_threshold:0.6; --conf's expandable_segments picks expandable
    const file = resolve(repoRoot, "test/fixtures/recorded/gc_nocap.pickle.gz");
    expect(replayJson([file, "--conf", "expandable_segments:True"])).toMatchObject({ policy: "expandable", policySource: "pytorch", conf: "expandable_segments:True" });
    const line = lakebed(["replay", file, "--conf", "expandable_segments:True"]).stdout.split("\n")[0];
    expect(line).toMatch(/: policy expandable \(PyTorch's allocator: the trace names no policy\), settings expandable_segments:True, capacity unlimited$/);
    expect(line.slice(file.length)).not.toContain("recorded");
  });
});
