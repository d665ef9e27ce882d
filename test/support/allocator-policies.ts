import { POLICIES } from "@lakebed/api";
import { policyEntry, type PolicyEntry } from "@lakebed/core-sim";

/**
 * The policies that replay a plain snapshot as it is meant: all but those that move blocks by their
 * recorded uses (tiering). The shared traces carry no use events, so tiering would replay them only
 * as a capacity-bound arena of 2 MiB pages, slowly (493 s live on gpt2_ckpt, 135 s for its minimum
 * capacity) and to no purpose; its own tests run on the access recordings (tiering-recorded,
 * live-tiering, live-midrun).
 */
export const ALLOCATOR_POLICIES = POLICIES.filter((p) => !(policyEntry(p) as PolicyEntry).readsUses);
