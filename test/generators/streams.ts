import fc from "fast-check";
import { ProgramBuilder, type Op } from "./program.js";
import { requestSizeArb } from "./sizes.js";

/**
 * Several streams, as in the recorded `two_streams` job: a copy stream allocates the next batch while
 * the compute stream works on the current one (and frees it there: the block belongs to the copy
 * stream, whichever stream frees it), and side streams do unrelated work with their own lifetimes.
 * Freed memory of one stream must never be handed to another stream without a device release in
 * between; this is what these programs give a policy the chance to get wrong.
 */
export interface StreamsParams {
  streams: number;
  steps: { batchBytes: number; computeBytes: number[]; sideBytes: number; sideLifetime: number }[];
}

export const streamsParamsArb: fc.Arbitrary<StreamsParams> = fc.record({
  streams: fc.integer({ min: 2, max: 4 }),
  steps: fc.array(
    fc.record({
      batchBytes: requestSizeArb,
      computeBytes: fc.array(requestSizeArb, { minLength: 1, maxLength: 6 }),
      sideBytes: requestSizeArb,
      sideLifetime: fc.integer({ min: 0, max: 3 }),
    }),
    { minLength: 1, maxLength: 12 },
  ),
});

export function buildStreams(p: StreamsParams): Op[] {
  const b = new ProgramBuilder();
  const copyStream = 1;
  let current = b.alloc(p.steps[0].batchBytes, copyStream);
  const side: { id: number; until: number }[] = [];
  p.steps.forEach((step, i) => {
    const next = b.alloc(p.steps[(i + 1) % p.steps.length].batchBytes, copyStream); // prefetch
    const work = step.computeBytes.map((n) => b.alloc(n, 0));
    const sideStream = 2 + (i % Math.max(1, p.streams - 2));
    if (p.streams > 2) side.push({ id: b.alloc(step.sideBytes, sideStream), until: i + step.sideLifetime });
    else b.scratch(step.sideBytes, copyStream);
    b.freeAll(work.reverse());
    b.free(current);
    current = next;
    for (const s of side.filter((s) => s.until <= i)) {
      b.free(s.id);
      side.splice(side.indexOf(s), 1);
    }
  });
  b.free(current);
  b.freeAll(side.map((s) => s.id));
  return b.ops;
}

export const streamsArb: fc.Arbitrary<Op[]> = streamsParamsArb.map(buildStreams);
