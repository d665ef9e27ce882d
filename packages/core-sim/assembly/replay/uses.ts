// Use events inside the Wasm: which live blocks each recorded operator touched, and when, copied in
// by the TypeScript side from the trace model's AccessColumns (packages/traces/src/model.ts, whose
// INV-USE-1..4 hold for them), and the computation clock the tiering policy's stall estimate reads.
//
//   uses (ascending by position, INV-USE-2):  position: u32   blockId: i32   kind: u8 (UseKind)
//                                             operator: u32 (the operator that made the use)
//   freeAt (one entry per trace block id): the position of the block's free_requested, NEVER_FREED
//            (i32 max) when the trace never frees it: Belady-with-frees' other reference
//   shrinkAt (ascending positions): where a serverless shrink runs, before the position's uses and
//            event (the idle gaps the TypeScript side found, or the points the user gave)
//   discard (one entry per trace block id, u8): 1 for a block the user tags as discardable (a
//            shrink drops its pages instead of copying them when every block on them is)
//   clock (one entry per position 0 .. events, where `events` is the event count):
//            clockUs: f64, the computation time, in µs from the trace's start, at which event
//            `position` happened (the recorder's inflation taken out: see src/use-clock.ts); NaN
//            everywhere when the trace recorded no time.
//
// A use at position p happened after event p-1 and before event p: the replay hands the uses of
// position p to the policy before it replays event p (and those at position == events after the
// last event), one operator at a time: several operators may run between two allocator events (an
// optimizer's per-parameter updates), and each needs only its own blocks on the device. Only a policy that reads uses (Policy.readsUses) is told; the others never see them.

export const NEVER_FREED: i32 = i32.MAX_VALUE;

export class UseColumns {
  length: i32;
  /** trace block ids the freeAt column covers */
  blockIds: i32;
  freeAt: usize;
  shrinkCount: i32 = 0;
  shrinkAt: usize = 0;
  discard: usize;
  /** event count + 1 entries: the clock at every position */
  clockLength: i32;
  position: usize;
  blockId: usize;
  kind: usize;
  operator: usize;
  clock: usize;

  constructor(length: i32, events: i32, blockIds: i32) {
    this.length = length;
    this.blockIds = blockIds;
    this.freeAt = heap.alloc(<usize>max(blockIds, 1) << 2);
    this.discard = heap.alloc(<usize>max(blockIds, 1));
    memory.fill(this.discard, 0, <usize>max(blockIds, 1));
    for (let b = 0; b < blockIds; b++) store<i32>(this.freeAt + (<usize>b << 2), NEVER_FREED);
    this.clockLength = events + 1;
    const n = <usize>max(length, 1);
    this.position = heap.alloc(n << 2);
    this.blockId = heap.alloc(n << 2);
    this.kind = heap.alloc(n);
    this.operator = heap.alloc(n << 2);
    this.clock = heap.alloc(<usize>this.clockLength << 3);
    for (let i = 0; i < this.clockLength; i++) store<f64>(this.clock + (<usize>i << 3), NaN);
  }

  @inline positionAt(u: i32): i32 { return load<i32>(this.position + (<usize>u << 2)); }
  @inline blockIdAt(u: i32): i32 { return load<i32>(this.blockId + (<usize>u << 2)); }
  @inline kindAt(u: i32): u8 { return load<u8>(this.kind + <usize>u); }
  @inline operatorAt(u: i32): i32 { return load<i32>(this.operator + (<usize>u << 2)); }
  /** Room for `count` shrink points (set before start). */
  allocateShrinks(count: i32): void {
    this.shrinkCount = count;
    this.shrinkAt = heap.alloc(<usize>max(count, 1) << 2);
  }
  @inline shrinkAtIndex(k: i32): i32 { return load<i32>(this.shrinkAt + (<usize>k << 2)); }
  @inline discardable(id: i32): bool { return id >= 0 && id < this.blockIds && load<u8>(this.discard + <usize>id) != 0; }
  /** where trace block `id` is freed (its free_requested), NEVER_FREED: never */
  @inline freeAtBlock(id: i32): i32 { return id >= 0 && id < this.blockIds ? load<i32>(this.freeAt + (<usize>id << 2)) : NEVER_FREED; }
  /** µs of computation at `position` (0 .. events); NaN when the trace has no time */
  @inline clockAt(position: i32): f64 { return load<f64>(this.clock + (<usize>position << 3)); }
}
