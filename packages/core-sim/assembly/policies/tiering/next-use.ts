// When is a live block needed next? The tiering policy evicts the pages whose blocks are needed
// last (Belady's rule), and this file answers for each block in one of two ways, side by side:
//
//   belady  the clairvoyant bound (Belady with frees): the position of the block's next reference,
//           read from the trace's future: its next recorded use (precomputed once: nextOfBlock[u]
//           is the position of the same block's use after use u), or, with no use left, its free.
//           A page whose blocks are all dead and freed soon is a poor victim (its memory comes back
//           anyway, and copying it out only loads the copy lane); one freed late is a good one.
//   online  from the past only, as a live allocator could: a prediction built from
//           - the lifetime the block's recurring allocation had in earlier training steps: training
//             repeats its allocations every step, so a block is known by a signature (its requested
//             size and how many blocks of that size were live when it was allocated: the k-th
//             activation of a shape in a step), and the gap between its i-th and (i+1)-th use last
//             time that signature was seen predicts this time's (activations: written in forward,
//             read in backward, the gap the previous step showed);
//           - when the signature's last instance had no more uses than this block has had, the
//             lifetime it had (allocation to free) predicts this block's free, its next reference;
//           - else the block's own last gap between uses (weights, optimizer state: used every step);
//           - else recency: a block unused for d positions is taken to be needed d positions from
//             now (LRU's order), and so is a block whose prediction has passed without its use.
//
// Positions are event indexes of the trace (INV-USE-2); the score is a position, larger = needed
// later = a better victim.

import { UseColumns, NEVER_FREED } from "../../replay/uses";
import { bRequested } from "../../memory/block-table";

export const NEVER: i32 = i32.MAX_VALUE;
/** uses per signature whose gaps online learns */
const LEARNED_USES: i32 = 32;
export const VICTIM_ONLINE: i32 = 0;
export const VICTIM_BELADY: i32 = 1;

function grown(from: StaticArray<i32>, length: i32): StaticArray<i32> {
  const to = new StaticArray<i32>(length);
  memory.copy(changetype<usize>(to), changetype<usize>(from), <usize>from.length << 2);
  return to;
}

/** (signature, use ordinal) as one key of the learned gaps */
@inline function gapKey(signature: u64, ordinal: i32): u64 {
  return (signature * 0x9e3779b97f4a7c15) ^ <u64>ordinal;
}

export class NextUse {
  mode: i32;
  // from the use columns (belady)
  /** per use: the position of the same block's next use, NEVER when none */
  private nextOfBlock: StaticArray<i32> = new StaticArray<i32>(0);
  /** per trace block id: the position of its first use, NEVER when none */
  private firstOfBlock: StaticArray<i32> = new StaticArray<i32>(0);
  // per handle (block-table id), set while the block is live
  private nextUse: StaticArray<i32> = new StaticArray<i32>(64);
  private lastUse: StaticArray<i32> = new StaticArray<i32>(64);
  private lastGap: StaticArray<i32> = new StaticArray<i32>(64);
  private gapBefore: StaticArray<i32> = new StaticArray<i32>(64);
  private ordinal: StaticArray<i32> = new StaticArray<i32>(64);
  private signature: StaticArray<u64> = new StaticArray<u64>(64);
  private allocatedAt: StaticArray<i32> = new StaticArray<i32>(64);
  /** belady: where each live block is freed */
  private freeAt: StaticArray<i32> = new StaticArray<i32>(64);
  private uses: UseColumns | null = null;
  // online's memory of earlier steps
  private learnedGap: Map<u64, i32> = new Map<u64, i32>();
  private liveBySize: Map<u64, i32> = new Map<u64, i32>();
  /** per signature: how many uses its last instance had, and its lifetime in positions */
  private learnedUses: Map<u64, i32> = new Map<u64, i32>();
  private learnedLifetime: Map<u64, i32> = new Map<u64, i32>();

  constructor(mode: i32) {
    this.mode = mode;
  }

  /** Precomputes the future of every use (belady needs it; online never reads it). */
  readUses(uses: UseColumns): void {
    let blocks = 0;
    for (let u = 0; u < uses.length; u++) blocks = max(blocks, uses.blockIdAt(u) + 1);
    const first = new StaticArray<i32>(blocks);
    for (let b = 0; b < blocks; b++) unchecked((first[b] = NEVER));
    const next = new StaticArray<i32>(uses.length);
    for (let u = uses.length - 1; u >= 0; u--) {
      const b = uses.blockIdAt(u);
      if (b < 0) {
        unchecked((next[u] = NEVER));
        continue;
      }
      unchecked((next[u] = first[b]));
      unchecked((first[b] = uses.positionAt(u)));
    }
    this.nextOfBlock = next;
    this.firstOfBlock = first;
    this.uses = uses;
  }

  private ensure(h: i32): void {
    if (h < this.nextUse.length) return;
    const n = max(h + 1, this.nextUse.length << 1);
    this.nextUse = grown(this.nextUse, n);
    this.lastUse = grown(this.lastUse, n);
    this.lastGap = grown(this.lastGap, n);
    this.gapBefore = grown(this.gapBefore, n);
    this.ordinal = grown(this.ordinal, n);
    this.allocatedAt = grown(this.allocatedAt, n);
    this.freeAt = grown(this.freeAt, n);
    const sig = new StaticArray<u64>(n);
    memory.copy(changetype<usize>(sig), changetype<usize>(this.signature), <usize>this.signature.length << 3);
    this.signature = sig;
  }

  /** Block h was allocated at `position` (its trace id is not known yet: see named). */
  allocated(h: i32, position: i32): void {
    this.ensure(h);
    const size = bRequested(h);
    const live = this.liveBySize.has(size) ? this.liveBySize.get(size) : 0;
    this.liveBySize.set(size, live + 1);
    unchecked((this.signature[h] = (size << 8) ^ <u64>min(live, 255)));
    unchecked((this.nextUse[h] = NEVER));
    unchecked((this.lastUse[h] = position));
    unchecked((this.lastGap[h] = 0));
    unchecked((this.gapBefore[h] = 0));
    unchecked((this.ordinal[h] = 0));
    unchecked((this.allocatedAt[h] = position));
    unchecked((this.freeAt[h] = NEVER_FREED));
  }

  /** The replay named block h with its trace id: its first recorded use is its next. */
  named(h: i32, traceId: i32): void {
    if (h >= this.nextUse.length) return;
    unchecked((this.nextUse[h] = traceId >= 0 && traceId < this.firstOfBlock.length ? this.firstOfBlock[traceId] : NEVER));
    const uses = this.uses;
    if (uses != null) unchecked((this.freeAt[h] = uses.freeAtBlock(traceId)));
  }

  /** Block h's free completed at `position`: its signature learns the lifetime and uses it had. */
  freed(h: i32, position: i32): void {
    if (h < this.nextUse.length) {
      const sig = unchecked(this.signature[h]);
      this.learnedUses.set(sig, unchecked(this.ordinal[h]));
      this.learnedLifetime.set(sig, position - unchecked(this.allocatedAt[h]));
    }
    const size = bRequested(h);
    if (this.liveBySize.has(size)) {
      const live = this.liveBySize.get(size) - 1;
      if (live <= 0) this.liveBySize.delete(size);
      else this.liveBySize.set(size, live);
    }
  }

  /** Use u of the columns, of block h, at `position`. */
  used(h: i32, u: i32, position: i32): void {
    if (h >= this.nextUse.length) return;
    unchecked((this.nextUse[h] = u < this.nextOfBlock.length ? this.nextOfBlock[u] : NEVER));
    const gap = position - unchecked(this.lastUse[h]);
    const i = unchecked(this.ordinal[h]);
    if (gap > 0) {
      // a signature's first uses only: activations and temporaries have a few, and a block used
      // every step (a weight) is predicted from its own gaps, so the table stays bounded
      if (i < LEARNED_USES) this.learnedGap.set(gapKey(unchecked(this.signature[h]), i), gap);
      unchecked((this.gapBefore[h] = this.lastGap[h]));
      unchecked((this.lastGap[h] = gap));
      unchecked((this.ordinal[h] = i + 1));
    }
    unchecked((this.lastUse[h] = position));
  }

  /** When block h is needed next, as a position (larger: later), seen from `now`. */
  score(h: i32, now: i32): i32 {
    if (this.mode == VICTIM_BELADY) {
      const next = unchecked(this.nextUse[h]);
      return next != NEVER ? next : unchecked(this.freeAt[h]);
    }
    const last = unchecked(this.lastUse[h]);
    const sig = unchecked(this.signature[h]);
    const ordinal = unchecked(this.ordinal[h]);
    let predicted = this.learnedUses.has(sig) && ordinal >= this.learnedUses.get(sig)
      ? unchecked(this.allocatedAt[h]) + this.learnedLifetime.get(sig)
      : this.fromGaps(h, sig, ordinal, last);
    if (predicted == NEVER || predicted <= now) predicted = now + (now - last);
    return predicted == NEVER ? NEVER : max(predicted, now + 1);
  }

  /**
   * When block h's bytes are needed next, as a position, NEVER when no use is expected (prefetch
   * reads it: a page brought back early must be one a use will read). belady: its next recorded
   * use. online, from the past only: the learned gap or its own last gaps, as score does, but no
   * guess where score guesses: a block expected to be freed next (its signature's last instance
   * had no more uses) and one with no gap known yet are NEVER; a prediction that has passed without
   * the use is taken as due now (the use is late, not gone: on gpt2_ckpt this finds most of the
   * neighbours belady would bring, 157 pages against 201).
   */
  nextNeed(h: i32, now: i32): i32 {
    if (this.mode == VICTIM_BELADY) return unchecked(this.nextUse[h]);
    const sig = unchecked(this.signature[h]);
    const ordinal = unchecked(this.ordinal[h]);
    if (this.learnedUses.has(sig) && ordinal >= this.learnedUses.get(sig)) return NEVER;
    return this.fromGaps(h, sig, ordinal, unchecked(this.lastUse[h]));
  }

  /**
   * Block h's next use (online) from the gap its signature learned at this ordinal, else from its
   * own last gaps; NEVER when neither is known. The sooner of its last two gaps: a block whose gaps
   * alternate (a weight used in forward, in recomputation and in backward) is kept through its
   * short gaps.
   */
  private fromGaps(h: i32, sig: u64, ordinal: i32, last: i32): i32 {
    const key = gapKey(sig, ordinal);
    if (this.learnedGap.has(key)) return last + this.learnedGap.get(key);
    const gap = unchecked(this.lastGap[h]);
    if (gap <= 0) return NEVER;
    const before = unchecked(this.gapBefore[h]);
    return last + (before > 0 ? min(before, gap) : gap);
  }

  /** The last position at which block h was allocated or used. */
  @inline lastTouched(h: i32): i32 {
    return unchecked(this.lastUse[h]);
  }
}
