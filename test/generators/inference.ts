import fc from "fast-check";
import { ProgramBuilder, type Op } from "./program.js";
import { tensorBytes } from "./sizes.js";

/**
 * Autoregressive inference with a KV cache that grows by one token per decode step, for a batch of
 * requests that start together and finish at different lengths. Three cache layouts real servers use:
 *  - "cat": `torch.cat` of the old cache and the new token (a new, slightly larger block each token,
 *    the old one freed right after: the classic fragmentation pattern);
 *  - "paged": fixed pages of `pageTokens` tokens allocated as the sequence crosses a page boundary;
 *  - "static": the whole cache for the maximum length allocated up front.
 * Each decode step also makes temporaries (attention scores, logits over the vocabulary).
 */
export interface InferenceParams {
  layers: number;
  /** bytes of K and V for one token of one layer */
  kvBytesPerToken: number;
  vocab: number;
  requests: { promptTokens: number; newTokens: number }[];
  layout: "cat" | "paged" | "static";
  pageTokens: number;
}

export const inferenceParamsArb: fc.Arbitrary<InferenceParams> = fc.record({
  layers: fc.integer({ min: 1, max: 4 }),
  kvBytesPerToken: fc.constantFrom(2 * 2 * 256, 2 * 2 * 1024, 2 * 2 * 4096, 2 * 2 * 8 * 128),
  vocab: fc.constantFrom(1000, 32000, 128256),
  requests: fc.array(fc.record({ promptTokens: fc.integer({ min: 1, max: 2048 }), newTokens: fc.integer({ min: 1, max: 40 }) }), {
    minLength: 1,
    maxLength: 4,
  }),
  layout: fc.constantFrom("cat" as const, "paged" as const, "static" as const),
  pageTokens: fc.constantFrom(16, 32, 256),
});

export function buildInference(p: InferenceParams): Op[] {
  const b = new ProgramBuilder();
  const weights = [b.alloc(tensorBytes(p.vocab * 1024, 2))];
  for (let l = 0; l < p.layers; l++) weights.push(b.alloc(64 * 1024 * 1024), b.alloc(3 * 1024 * 1024));

  interface Seq {
    len: number;
    end: number;
    /** per layer: the cache blocks (one for cat/static, a list of pages for paged) */
    cache: number[][];
  }
  const seqs: Seq[] = p.requests.map((r) => ({ len: 0, end: r.promptTokens + r.newTokens, cache: [] }));
  const grow = (s: Seq, tokens: number) => {
    for (let l = 0; l < p.layers; l++) {
      const blocks = (s.cache[l] ??= []);
      if (p.layout === "cat") {
        const next = b.alloc(tensorBytes(s.len + tokens, p.kvBytesPerToken));
        b.freeAll(blocks.splice(0));
        blocks.push(next);
      } else if (p.layout === "paged") {
        const pagesNeeded = Math.ceil((s.len + tokens) / p.pageTokens);
        while (blocks.length < pagesNeeded) blocks.push(b.alloc(p.pageTokens * p.kvBytesPerToken));
      } else if (blocks.length === 0) {
        blocks.push(b.alloc(tensorBytes(s.end, p.kvBytesPerToken)));
      }
    }
    s.len += tokens;
  };

  // prefill, one request at a time, with its prompt-sized temporaries
  p.requests.forEach((r, i) => {
    const hidden = b.alloc(r.promptTokens * 4096 * 2);
    grow(seqs[i], r.promptTokens);
    b.scratch(tensorBytes(r.promptTokens * r.promptTokens, 2 * 8)); // attention scores, 8 heads
    b.free(hidden);
  });
  // decode: every live request advances one token per step
  for (;;) {
    const active = seqs.filter((s) => s.len < s.end);
    if (active.length === 0) break;
    const hidden = b.alloc(active.length * 4096 * 2);
    for (const s of active) {
      grow(s, 1);
      b.scratch(tensorBytes(s.len, 2 * 8));
      if (s.len === s.end) for (const blocks of s.cache) b.freeAll(blocks.splice(0));
    }
    b.scratch(tensorBytes(active.length * p.vocab, 4)); // logits
    b.free(hidden);
  }
  b.freeAll(weights);
  return b.ops;
}

export const inferenceArb: fc.Arbitrary<Op[]> = inferenceParamsArb.map(buildInference);
