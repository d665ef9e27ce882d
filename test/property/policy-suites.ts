import type { PolicyName } from "@lakebed/core-sim";
import type { PolicyUnderTest } from "./allocator-under-test.js";
import { coreSimPolicy } from "./core-sim-adapter.js";

/**
 * Every policy the harness holds to its guarantees, under the settings that reach its distinct
 * code paths. A new policy joins here (docs/harness.md): one line per setting worth testing.
 *
 *  caching      PyTorch's defaults, and max_split_size_mb with roundup divisions (oversize blocks,
 *               rounding buckets);
 *  expandable   PyTorch's expandable segments;
 *  vms          GMLake's defaults (stitching from 512 MiB), and stitching from 2 MiB with reAlloc so
 *               that the harness's sizes reach stitching, reuse and GC of stitched blocks;
 *  lakebed      the project's policy, and with idle slack and a placement window.
 */
export interface PolicySuite {
  policy: PolicyName;
  conf: string;
}

export const POLICY_SUITES: readonly PolicySuite[] = [
  { policy: "caching", conf: "" },
  { policy: "caching", conf: "max_split_size_mb:40,roundup_power2_divisions:4" },
  { policy: "expandable", conf: "" },
  { policy: "vms", conf: "" },
  { policy: "vms", conf: "fragLimit:2097152,reAlloc:1,autoGC:1" },
  { policy: "lakebed", conf: "" },
  { policy: "lakebed", conf: "lakebed_slack_permille:250,lakebed_fit_window:4" },
];

export function suitePolicy(s: PolicySuite): PolicyUnderTest {
  return coreSimPolicy(s.policy, s.conf);
}
