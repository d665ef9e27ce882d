// Deliberately broken variants of the tiering policy, as in ../broken.ts (one guarded line each at
// the place the mistake would be made; the normal build folds every guard away). They live here,
// numbered from 101, not in broken.ts: the property harness's self-check
// (test/property/broken-variants.test.ts) runs every variant broken.ts lists through its generic
// command programs, which have no use events and no tier capacity, so none of these mistakes can
// show there. test/tiering-properties.test.ts runs them instead, on generated traces with use
// events under a capacity, and sees each one fail a property.
export { BROKEN } from "../broken";

/** tiering: bringing a used block back skips its last page (the use then touches a page on the host) */
export const BROKEN_TIERING_USE_SKIPS_LAST_PAGE: i32 = 101;
/** tiering: a victim may be a page the current operation needs (its own pages move out under it) */
export const BROKEN_TIERING_EVICTS_PINNED: i32 = 102;
/** tiering: bringing a page back keeps its host slot (host bytes grow without bound) */
export const BROKEN_TIERING_HOST_SLOT_LEAK: i32 = 103;
/** tiering: chunks are created past the tier capacity instead of moving pages */
export const BROKEN_TIERING_IGNORES_CAPACITY: i32 = 104;
/** tiering: a serverless shrink leaves its first resident page on the device */
export const BROKEN_TIERING_SHRINK_KEEPS_A_PAGE: i32 = 105;
/** tiering: a use that prefetches evicts one victim more than its batch lacked, free room or not (the room stays unused; INV-TIER-9, G-TIER-EVICT) */
export const BROKEN_TIERING_PREFETCH_EVICTS_EXTRA: i32 = 106;
