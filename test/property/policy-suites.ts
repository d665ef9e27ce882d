import type { PolicyName } from "@lakebed/core-sim";
import { POLICY_REGISTRY } from "@lakebed/core-sim";
import type { PolicyUnderTest } from "./allocator-under-test.js";
import { coreSimPolicy } from "./core-sim-adapter.js";

/**
 * Every policy the harness holds to its guarantees: each policy of core-sim's registry
 * (packages/core-sim/src/policy-registry.ts), under its defaults and under each of its entry's
 * harnessSettings, the settings that reach its distinct code paths (docs/adding-a-policy.md). For
 * today's policies:
 *
 *  caching      PyTorch's defaults, and max_split_size_mb with roundup divisions (oversize blocks,
 *               rounding buckets);
 *  expandable   PyTorch's expandable segments;
 *  vms          GMLake's defaults (stitching from 512 MiB), and stitching from 2 MiB with reAlloc so
 *               that the harness's sizes reach stitching, reuse and GC of stitched blocks;
 *  lakebed      the project's policy, with idle slack and a placement window, and with 2 MiB large
 *               pages (one chunk pool for small and large arenas).
 */
export interface PolicySuite {
  policy: PolicyName;
  conf: string;
}

export const POLICY_SUITES: readonly PolicySuite[] = POLICY_REGISTRY.flatMap((p) => ["", ...p.harnessSettings].map((conf) => ({ policy: p.name, conf })));

export function suitePolicy(s: PolicySuite): PolicyUnderTest {
  return coreSimPolicy(s.policy, s.conf);
}
