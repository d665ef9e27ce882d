// The names of each policy's own counters (Policy.counter(i)), by policy, as the replay reports
// them: a view of the registry (policy-registry.ts), which declares them.
import { POLICY_REGISTRY, type PolicyName } from "./policy-registry.js";

export const POLICY_COUNTER_NAMES = {} as Record<PolicyName, readonly string[]>;
for (const p of POLICY_REGISTRY) POLICY_COUNTER_NAMES[p.name] = p.counters;

export { invariantName } from "./policy-registry.js";
