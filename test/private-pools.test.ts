import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodePickle, parseTrace, readTrace, traceToArrowBytes } from "@lakebed/traces";
import { describeTrace, verifyTrace } from "@lakebed/api";
import { lakebed, tempFile } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * Private memory pools (CUDA graphs, torch.cuda.MemPool) are outside the emulation: trace entries
 * do not say which allocations PyTorch routed to them. Traces recorded on an H200 with them
 * (test/fixtures/private-pools, see its README) must be told apart from emulation errors: the pools
 * the final snapshot shows are reported by info, verify gives them as its reason, and replay warns.
 */
const dir = join(repoRoot, "test/fixtures/private-pools");
const MiB = 1 << 20;

describe("traces that use private memory pools", () => {
  it("CUDA graphs: the snapshot's graph pool is read, reported by info and kept by the Arrow format", async () => {
    const trace = await readTrace(join(dir, "graphs.pickle.gz"));
    const pools = [{ id: [1, 0], kind: "cuda_graph", segments: 2, bytes: 34 * MiB }];
    expect(trace.devices.map((d) => d.privatePools)).toEqual([pools]);
    expect(describeTrace(trace).devices[0].privatePools).toEqual(pools);
    const again = parseTrace(traceToArrowBytes(trace), "graphs.arrow");
    expect(again.devices[0].privatePools).toEqual(pools);
  });

  for (const [name, policy] of [
    ["graphs", "caching"],
    ["graphs_exp", "expandable"],
  ]) {
    it(`${name}: verify names the pool as the reason the emulation diverges`, async () => {
      const document = verifyTrace(await readTrace(join(dir, `${name}.pickle.gz`)));
      expect(document.policy).toBe(policy);
      expect(document.match).toBe(false);
      expect(document.devices).toHaveLength(1);
      expect(document.reason).toMatch(/private memory pools \(device 0: 2 segments \(\d+\.\d\d MiB\) in CUDA graph pool \(1, 0\)\)/);
    });
  }

  it("the CLI: verify prints the comparison and why, replay warns on stderr and keeps stdout JSON", () => {
    const file = join(dir, "graphs.pickle.gz");
    const verify = lakebed(["verify", file]);
    expect(verify.status).toBe(1);
    expect(verify.stdout).toMatch(/MISMATCH/);
    expect(verify.stdout).toMatch(/^why: the trace allocates from private memory pools/m);
    const replay = lakebed(["replay", file, "--json"]);
    expect(replay.status).toBe(0);
    expect(JSON.parse(replay.stdout).devices).toHaveLength(1);
    expect(replay.stderr).toMatch(/graphs\.pickle\.gz: the trace allocates from private memory pools .* approximate/);
  });

  it("MemPool: when no pool segment outlives the trace nothing shows it, and the emulation diverges (a documented limit)", async () => {
    const trace = await readTrace(join(dir, "mempool.pickle.gz"));
    expect(trace.devices[0].privatePools).toEqual([]);
    const document = verifyTrace(trace);
    expect(document.match).toBe(false);
    expect(document.reason).toBeUndefined();
  });

  it("a malformed segment_pool_id is a one-line error naming the segment", () => {
    const raw = gunzipSync(readFileSync(join(dir, "graphs.pickle.gz")));
    const snapshot = decodePickle(raw, { file: "graphs" }) as { segments: Record<string, unknown>[] };
    snapshot.segments[0].segment_pool_id = [1];
    const file = tempFile("bad-pool.json", JSON.stringify(snapshot, (_k, v) => (typeof v === "bigint" ? Number(v) : v)));
    const r = lakebed(["info", file]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/bad-pool\.json.*segments\[0\]\.segment_pool_id is .*expected a pair of pool ids$/);
  });
});
