// Deliberately broken variants of the policies, for one purpose only: showing that the property
// harness (test/property) catches real mistakes (test/property/broken-variants.test.ts). Each
// variant is one line in a policy file, guarded by `BROKEN == BROKEN_...`, at the exact place the
// mistake would be made.
//
// The normal build never defines BROKEN_VARIANTS, so BROKEN is the constant 0 and every guard
// folds away at compile time: dist/core-sim.wasm is the same with or without the hooks. The test
// build (scripts/build-test.mjs, `asc --use BROKEN_VARIANTS=1`) holds them all: there BROKEN is
// the global env.brokenVariant, which the harness gives at instantiation (one variant per
// instance).

// @ts-ignore: decorator
@external("env", "brokenVariant")
declare const brokenVariant: i32;

// @ts-ignore: BROKEN_VARIANTS is a compile-time constant that exists only under --use BROKEN_VARIANTS=1
export const BROKEN: i32 = isDefined(BROKEN_VARIANTS) ? brokenVariant : 0;

/** caching: the free remainder of a split starts 512 bytes inside the block handed out */
export const BROKEN_CACHING_SPLIT_OFF_BY_ONE: i32 = 1;
/** caching: free merges with the next free block even across an allocated one */
export const BROKEN_CACHING_MERGE_NON_ADJACENT: i32 = 2;
/** caching: free of a large block leaves allocated_bytes as it was */
export const BROKEN_CACHING_MISSED_STATS: i32 = 3;
/** caching: best fit takes a free block of another stream */
export const BROKEN_CACHING_CROSS_STREAM: i32 = 4;
/** caching: releasing a cached segment leaves reserved_bytes as it was */
export const BROKEN_CACHING_RELEASE_KEEPS_RESERVED: i32 = 5;
/** expandable: unmapping a free block's pages rounds its end up, taking a page a live block uses */
export const BROKEN_EXPANDABLE_UNMAP_PAST_END: i32 = 6;
/** vms: a stitched block maps its last chunk without claiming it from the free pBlocks */
export const BROKEN_VMS_STITCH_FORGETS_CHUNK: i32 = 7;
/** vms: releasing a segment leaves reserved_bytes as it was */
export const BROKEN_VMS_RELEASE_KEEPS_RESERVED: i32 = 8;
/** lakebed: a free drops the touch of one page past the block's end */
export const BROKEN_LAKEBED_UNTOUCH_PAST_END: i32 = 9;
/** lakebed: releasing an idle chunk leaves reserved_bytes as it was */
export const BROKEN_LAKEBED_RELEASE_KEEPS_RESERVED: i32 = 10;
/** lakebed: a block placed at the back of a free range starts 512 bytes late, over its neighbour */
export const BROKEN_LAKEBED_BACK_OVERLAPS: i32 = 11;
/** lakebed: a page touched again takes over the chunk it maps even while another page holds it */
export const BROKEN_LAKEBED_TAKES_HELD_CHUNK: i32 = 12;
