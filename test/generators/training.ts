import fc from "fast-check";
import { ProgramBuilder, type Op } from "./program.js";
import { tensorBytes } from "./sizes.js";

/**
 * Training steps of a transformer as the caching allocator sees them: weights allocated once,
 * per-step activations whose shapes change with every batch (dynamic shapes: batch size and sequence
 * length drawn per step), attention temporaries that grow with seq², a backward pass that frees
 * activations in reverse order while gradients appear, optimizer state created at the first step and
 * kept, and `zero_grad(set_to_none=True)` freeing gradients at the end of each step.
 *
 * Variants: activation checkpointing (keep only each layer's input; recompute the layer's
 * activations in backward), and LoRA (frozen base weights, small trainable adapters: gradients and
 * optimizer state only for the adapters, all in the small pool).
 */
export interface TrainingParams {
  layers: number;
  hidden: number;
  vocab: number;
  dtypeBytes: number;
  steps: { batch: number; seq: number }[];
  optimizer: "adamw" | "sgd";
  checkpointing: boolean;
  /** LoRA rank; 0 = full fine-tuning */
  loraRank: number;
}

export const trainingParamsArb: fc.Arbitrary<TrainingParams> = fc.record({
  layers: fc.integer({ min: 1, max: 4 }),
  hidden: fc.constantFrom(64, 256, 768, 1024, 2048),
  vocab: fc.constantFrom(1000, 8192, 50257),
  dtypeBytes: fc.constantFrom(2, 4),
  steps: fc.array(
    fc.record({ batch: fc.integer({ min: 1, max: 16 }), seq: fc.integer({ min: 1, max: 32 }).map((k) => k * 64) }),
    { minLength: 1, maxLength: 4 },
  ),
  optimizer: fc.constantFrom("adamw" as const, "sgd" as const),
  checkpointing: fc.boolean(),
  loraRank: fc.constantFrom(0, 0, 8, 16, 64),
});

interface Layer {
  /** numel of each weight matrix */
  weights: number[];
  /** numel of each trainable parameter (the weights, or the LoRA adapters) */
  trainable: number[];
}

export function buildTraining(p: TrainingParams): Op[] {
  const b = new ProgramBuilder();
  const h = p.hidden;
  const heads = Math.max(1, h / 64);
  const dt = p.dtypeBytes;
  const layers: Layer[] = [];
  const weightIds: number[] = [];
  const trainableNumel: number[] = [];

  weightIds.push(b.alloc(tensorBytes(p.vocab * h, dt))); // embedding
  if (p.loraRank === 0) trainableNumel.push(p.vocab * h);
  for (let l = 0; l < p.layers; l++) {
    const weights = [3 * h * h, 3 * h, h * h, h, 4 * h * h, 4 * h, 4 * h * h, h, h, h];
    for (const n of weights) weightIds.push(b.alloc(tensorBytes(n, dt)));
    const trainable = p.loraRank > 0 ? [p.loraRank * h, 3 * h * p.loraRank, p.loraRank * h, h * p.loraRank] : weights;
    if (p.loraRank > 0) for (const n of trainable) weightIds.push(b.alloc(tensorBytes(n, 4)));
    layers.push({ weights, trainable });
    trainableNumel.push(...trainable);
  }

  const optimizerState: number[] = [];
  for (const step of p.steps) {
    const B = step.batch;
    const S = step.seq;
    const bsh = B * S * h;
    const tokens = b.alloc(B * S * 8);
    let x = b.alloc(tensorBytes(bsh, dt));

    // forward: per layer, what autograd saves for backward
    const saved: number[][] = [];
    for (let l = 0; l < p.layers; l++) {
      const kept = forwardLayer(b, bsh, B, S, heads, dt, p.checkpointing);
      if (p.checkpointing) {
        saved.push([x]); // the layer input only
      } else {
        saved.push([x, ...kept]);
      }
      x = b.alloc(tensorBytes(bsh, dt));
    }
    const logits = b.alloc(tensorBytes(B * S * p.vocab, 4));
    b.scratch(tensorBytes(B * S * p.vocab, 4)); // log-softmax
    const loss = b.alloc(4);

    // backward
    const grads: number[] = [];
    let gradOut = b.alloc(tensorBytes(B * S * p.vocab, 4));
    b.free(logits);
    b.free(loss);
    let gradX = b.alloc(tensorBytes(bsh, dt));
    b.free(gradOut);
    b.free(x);
    for (let l = p.layers - 1; l >= 0; l--) {
      let acts = saved[l];
      if (p.checkpointing) acts = [...acts, ...forwardLayer(b, bsh, B, S, heads, dt, false)]; // recompute
      b.scratch(tensorBytes(B * heads * S * S, dt)); // grad of attention probabilities
      for (const n of layers[l].trainable) grads.push(b.alloc(tensorBytes(n, p.loraRank > 0 ? 4 : dt)));
      gradOut = b.alloc(tensorBytes(bsh, dt));
      b.free(gradX);
      gradX = gradOut;
      b.freeAll(acts);
    }
    b.free(gradX);
    b.free(tokens);

    // optimizer step
    if (p.optimizer === "adamw" && optimizerState.length === 0) {
      for (const n of trainableNumel) optimizerState.push(b.alloc(tensorBytes(n, 4)), b.alloc(tensorBytes(n, 4)));
    }
    for (const n of trainableNumel) b.scratch(tensorBytes(n, 4));
    b.freeAll(grads); // zero_grad(set_to_none=True)
  }
  b.freeAll(optimizerState);
  b.freeAll(weightIds);
  return b.ops;
}

/** one transformer block forward; returns the tensors autograd keeps (freed at once when `discard`) */
function forwardLayer(b: ProgramBuilder, bsh: number, B: number, S: number, heads: number, dt: number, discard: boolean): number[] {
  const kept: number[] = [];
  kept.push(b.alloc(tensorBytes(bsh, dt))); // layer norm
  kept.push(b.alloc(tensorBytes(3 * bsh, dt))); // qkv
  const scores = b.alloc(tensorBytes(B * heads * S * S, dt));
  kept.push(b.alloc(tensorBytes(B * heads * S * S, dt))); // softmax
  b.free(scores);
  kept.push(b.alloc(tensorBytes(bsh, dt))); // attention output
  kept.push(b.alloc(tensorBytes(4 * bsh, dt))); // mlp up
  kept.push(b.alloc(tensorBytes(4 * bsh, dt))); // gelu
  if (discard) {
    b.freeAll(kept);
    return [];
  }
  return kept;
}

export const trainingArb: fc.Arbitrary<Op[]> = trainingParamsArb.map(buildTraining);
