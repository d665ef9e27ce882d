// What the replay loop asks of a memory policy. Every policy (caching and expandable segments,
// vms stitching and lakebed today; tiering, dedup and handover later) extends Policy and talks to
// memory only through its Device.
//
// Handles: malloc returns a block handle (a block-table id), valid until the block's free
// completes. The replay keeps the trace's allocation id -> handle table; a policy remembers the
// trace id of each live block only to report it in layouts.

import { Device } from "../device/device";
import { Stats, NUM_SYNC_ALL_STREAMS } from "./stats";
import { UNLIMITED } from "./config";
import { FLAG_PENDING, blockIdBound, isLive, hasFlag, bTraceId, bAddr, bSize, setTraceId as setBlockTraceId } from "../memory/block-table";
import { changesOverflowed, clearChanges } from "../memory/changed-blocks";
import { SegmentLog } from "../replay/segment-log";
import { Layout, BLOCK_INACTIVE, BLOCK_PENDING_FREE } from "../replay/layout";
import { UseColumns } from "../replay/uses";

export const NO_HANDLE_BLOCK: i32 = -1;

export abstract class Policy {
  device: Device;
  stats: Stats = new Stats();
  log: SegmentLog;
  /**
   * Trace ids of blocks whose pending free the policy completed on its own (a full stream
   * synchronization in empty_cache or the out-of-memory path). The replay drains it and ignores
   * those blocks' later free_completed events.
   */
  selfCompleted: StaticArray<i32> = new StaticArray<i32>(16);
  selfCompletedCount: i32 = 0;
  /** blocks freed by the caller whose free has not completed (free_requested, not yet free_completed) */
  pendingBlocks: i32 = 0;
  /** set_per_process_memory_fraction, as the bytes it allows (UNLIMITED: none was set) */
  allowedMaxBytes: u64 = UNLIMITED;
  /** a fraction was set: the limit holds, and PyTorch's garbage collection may run (it needs one) */
  setFraction: bool = false;

  constructor(device: Device, log: SegmentLog) {
    this.device = device;
    this.log = log;
  }

  /** A block of at least requestBytes for `stream`: its handle, or -1 when out of memory. */
  abstract malloc(requestBytes: u64, stream: i32): i32;
  /** The caller freed the block; it may still wait on other streams (free_requested). */
  abstract freeRequest(handle: i32): void;
  /** The block's stream events completed: it returns to the cache (free_completed). */
  abstract freeComplete(handle: i32): void;
  /** torch.cuda.empty_cache(): give every cached segment or page that holds no block back. */
  abstract emptyCache(): void;
  /**
   * Would a malloc of this request, made now, give memory back to the device before it returns
   * (reclaim cached segments, collect garbage, or free and retry)? Asks without changing anything.
   */
  abstract mallocWouldRelease(requestBytes: u64, stream: i32): bool;

  /** torch.cuda.set_per_process_memory_fraction, at any moment: `bytes` from now on (UNLIMITED: none). */
  setAllowedMax(bytes: u64): void {
    this.allowedMaxBytes = bytes;
    this.setFraction = bytes != UNLIMITED;
  }

  /**
   * Whether `moreBytes` of new device memory on top of the `heldBytes` the policy holds stay within
   * the memory fraction: the one place every policy checks the limit (each says what it holds:
   * the caching allocator and vms what they got from the device, lakebed its chunks).
   */
  @inline withinFraction(heldBytes: u64, moreBytes: u64): bool {
    return !this.setFraction || heldBytes + moreBytes <= this.allowedMaxBytes;
  }
  /**
   * isValid at two levels, as mimalloc's cheap and expensive assertions. brokenInvariant: the whole
   * walk of every structure, 0 when every invariant holds, else the number of the first broken one.
   */
  abstract brokenInvariant(): i32;
  /**
   * The same invariants where the operations since the last check changed something: the records
   * memory/changed-blocks.ts lists, their neighbours, their segment, pages or chunks, and the sums
   * kept in O(1). Cheap enough to run after every event; what it cannot see is the whole walk's,
   * which the caller runs every N events and at the end. Default: the whole walk.
   */
  brokenLocalInvariant(): i32 {
    return this.brokenInvariant();
  }
  /**
   * One check: the whole walk (`full`, or when the change log overflowed) or the local one; the
   * change log then starts afresh.
   */
  brokenInvariantChecked(full: bool): i32 {
    const broken = full || changesOverflowed() ? this.brokenInvariant() : this.brokenLocalInvariant();
    clearChanges();
    return broken;
  }
  isValid(): bool {
    return this.brokenInvariant() == 0;
  }
  /** The current segments and blocks. */
  abstract writeLayout(out: Layout): void;
  // A handle is a record of the shared block table (see the top of this file); a policy whose
  // handles mean something else overrides these three.
  handleAddress(handle: i32): u64 {
    return bAddr(handle);
  }
  handleSize(handle: i32): u64 {
    return bSize(handle);
  }
  /** Tags a live block with the trace's allocation id (for layouts). */
  setTraceId(handle: i32, traceId: i32): void {
    setBlockTraceId(handle, traceId);
  }

  // Rebuilding the state at the start of a trace recorded mid-run, one segment at a time in
  // ascending address order: beginSegment, then its blocks in address order.
  abstract adoptSegment(address: u64, stream: i32, small: bool, expandable: bool): void;
  /** state: BLOCK_ALLOCATED, BLOCK_PENDING_FREE or BLOCK_INACTIVE; returns the handle (-1 for inactive) */
  abstract adoptBlock(address: u64, size: u64, requested: u64, state: u8, traceId: i32): i32;
  abstract adoptDone(): void;

  // Use events (replay/uses.ts): which blocks each recorded operator touches. Only a policy that
  // answers readsUses() is handed them (tiering, which must bring a block back before its use); the
  // replay never even looks at the columns for the others, so they run as they did without them.
  /** Whether the replay hands this policy the trace's use events. */
  readsUses(): bool {
    return false;
  }
  /** Once, before the first event: the use columns (and clock) of the whole trace. */
  beginUses(uses: UseColumns): void {}
  /**
   * Before event `position`: the operator(s) recorded there use these live blocks, handles[0 ..
   * count), which are uses firstUse .. firstUse + count - 1 of the columns (-1 handles: blocks the
   * replay does not hold, e.g. an allocation that failed).
   */
  useBlocks(position: i32, handles: StaticArray<i32>, firstUse: i32, count: i32): void {}

  /**
   * The policy's own counters of what it did (vms: stitches made, reused, collected; lakebed:
   * chunk moves), by index; the TypeScript side names them per policy (src/policy-counters.ts).
   */
  counter(i: i32): f64 {
    return 0;
  }

  /**
   * adoptBlock for a policy that would not have made the recorded segments (vms, lakebed): a live
   * block is allocated afresh, in snapshot order, as if allocated then; a cached one is dropped.
   */
  adoptAfresh(requested: u64, state: u8, traceId: i32, stream: i32): i32 {
    if (state == BLOCK_INACTIVE) return NO_HANDLE_BLOCK;
    const h = this.malloc(requested, stream);
    if (h < 0) return h;
    this.setTraceId(h, traceId);
    if (state == BLOCK_PENDING_FREE) this.freeRequest(h);
    return h;
  }

  /**
   * A full synchronization (PyTorch's synchronize_and_free_events): every pending free completes,
   * and the replay is told which (selfCompleted). In a trace replay the trace's own free_completed
   * events come first, so this finds only frees that still wait on other streams.
   */
  completePendingFrees(): void {
    this.stats.count(NUM_SYNC_ALL_STREAMS);
    if (this.pendingBlocks == 0) return;
    const bound = blockIdBound();
    for (let b = 0; b < bound; b++) {
      if (!isLive(b) || !hasFlag(b, FLAG_PENDING)) continue;
      const traceId = bTraceId(b);
      if (traceId >= 0) this.noteSelfCompleted(traceId);
      this.freeComplete(b);
    }
  }

  noteSelfCompleted(traceId: i32): void {
    if (this.selfCompletedCount == this.selfCompleted.length) {
      const grown = new StaticArray<i32>(this.selfCompleted.length * 2);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.selfCompleted), <usize>this.selfCompletedCount << 2);
      this.selfCompleted = grown;
    }
    this.selfCompleted[this.selfCompletedCount++] = traceId;
  }
}
