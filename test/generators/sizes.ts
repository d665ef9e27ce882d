import fc from "fast-check";
import { GiB, MiB } from "./program.js";

/**
 * Request sizes in bytes. Real jobs mix tiny tensors (biases, scalars, LoRA adapters) with
 * activations of megabytes to gigabytes; allocators change behaviour at a few exact sizes
 * (512 B blocks, the 1 MiB small/large pool line, the 10 MiB "own segment" line, the 20 MiB segment
 * and oversize tolerance, 2 MiB pages), so those sizes and their neighbours are drawn often.
 */
export const EDGE_SIZES_BYTES: readonly number[] = [
  1, 511, 512, 513, 4096,
  MiB - 512, MiB - 1, MiB, MiB + 1, MiB + 512,
  2 * MiB - 512, 2 * MiB, 2 * MiB + 1,
  10 * MiB - 512, 10 * MiB - 1, 10 * MiB, 10 * MiB + 1, 11 * MiB, 12 * MiB - 512,
  20 * MiB - 512, 20 * MiB, 20 * MiB + 1, 40 * MiB + 512,
  100_000_000,
];

export const edgeSizeArb = fc.constantFrom(...EDGE_SIZES_BYTES);

export const requestSizeArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: edgeSizeArb },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: MiB }) },
  { weight: 3, arbitrary: fc.integer({ min: MiB + 1, max: 10 * MiB }) },
  { weight: 2, arbitrary: fc.integer({ min: 10 * MiB, max: 512 * MiB }) },
  { weight: 1, arbitrary: fc.integer({ min: 512 * MiB, max: 8 * GiB }) },
);

/** A memory limit: unlimited, or 16 MiB to 8 GiB on whole MiB. */
export const capacityArb: fc.Arbitrary<number | null> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 3, arbitrary: fc.integer({ min: 16, max: 8 * 1024 }).map((mib) => mib * MiB) },
);

/** bytes of a tensor of `numel` elements of `dtypeBytes` each */
export function tensorBytes(numel: number, dtypeBytes: number): number {
  return Math.max(1, Math.round(numel * dtypeBytes));
}
