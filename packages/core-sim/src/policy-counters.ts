// Names of each policy's own counters (Policy.counter(i) in assembly/policies/policy.ts), in the
// order the policy's counter() switch returns them, and of its numbered invariants.
import type { POLICY_CODES } from "./wasm.js";

type PolicyKey = keyof typeof POLICY_CODES;

export const POLICY_COUNTER_NAMES: Record<PolicyKey, readonly string[]> = {
  caching: [],
  expandable: [],
  /** assembly/policies/vms/vms.ts VmsPolicy.counter */
  vms: ["stitches", "stitchReuses", "stitchesCollected", "reAllocs", "liveStitches"],
  /** assembly/policies/lakebed/lakebed.ts LakebedPolicy.counter */
  lakebed: ["chunkMoves", "chunks", "touchedPagesPeak"],
};

/** The name of invariant number n as the policy's header states it (vms: 100 + n for its own). */
export function invariantName(policy: PolicyKey, n: number): string {
  if (policy === "lakebed") return `INV-LB-${n}`;
  if (policy === "vms" && n > 100) return `INV-VMS-${n - 100}`;
  return `INV-CACHE-${n}`;
}
