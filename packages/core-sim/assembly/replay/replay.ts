// The replay loop: one device's trace events, as columns in linear memory, fed to a policy inside
// the Wasm instance; JavaScript is called once per chunk, never per event.
//
// Event columns (the trace model's EventColumns, copied in by the TypeScript side):
//   action: u8   addr: f64   size: f64   stream: u32   blockId: i32
//
// Per event:
//   alloc            malloc(size, stream); the handle goes into the allocation table under the
//                    trace's block id. A malloc the emulation cannot serve counts as a failed alloc
//                    and the block's later frees are skipped.
//   free_requested   the policy's free request (allocated bytes drop; the block may still wait on
//                    other streams).
//   free_completed   the block returns to the cache (merge; active bytes drop). Completions are
//                    applied in trace order (reference A11, "replay shortcut"): PyTorch wrote each
//                    one where its stream events were found complete. Except right before a
//                    segment_free/unmap burst: there they are what a full synchronization wrote
//                    (empty_cache, or the out-of-memory path inside the next malloc, which found
//                    those blocks still pending when it searched the cache). They wait; the
//                    policy's own synchronization completes them, and any it did not reach are
//                    completed after that malloc. A completion right after its own request is the
//                    free call's own (no other stream used the block) and never waits.
//   segment_alloc, segment_map
//                    no action: they are the address oracle's input (device/address-oracle.ts).
//   segment_free, segment_unmap
//                    a burst of these is either torch.cuda.empty_cache() or the work of the next
//                    malloc itself (out-of-memory retry, garbage collection, releasing oversize
//                    segments). Look ahead to the next alloc/oom: if the policy could serve it
//                    without giving memory back, the burst was an empty_cache, and the replay calls
//                    emptyCache() here; else the malloc will do it.
//                    A trace that names its empty_cache calls (setEmptyCacheMarks: liblakebed_torch's
//                    snapshots, DeviceTrace.emptyCacheAt) is replayed as it says instead: emptyCache()
//                    right before each marked event, no burst inferred, no completion held back. Its
//                    other segment_free/unmap are the policy's own work inside a malloc (a lakebed
//                    chunk move: an unmap that mallocWouldRelease, which answers for releases, would
//                    take for an empty_cache), which the policy makes again by itself.
//   oom              malloc(size) expecting failure; if the emulation serves it, the block is freed
//                    at once and counted (unexpectedOomSuccesses).
//   snapshot, other  nothing.
//
// Use events (uses.ts), for a policy that reads them (Policy.readsUses): before event p the policy
// is handed the blocks the operators recorded at position p use (useBlocks), and after the last
// event those at position == events. Other policies are never told, at no cost per event.
//
// Data verification (live replays on an ImportedDevice, verifyData on): each allocation the policy
// hands out gets the check pattern written across it (seeded by its alloc event index) and read
// back right before its free_requested, before the policy may reuse a byte of it; an allocation an
// unexpected OOM success frees at once is checked before that free, and allocations still live at
// the end of the trace are checked then. Two live allocations that share memory (a policy bug, or a
// stitched range mapped wrong) overwrite each other's pattern, and the check counts the bytes.

import { Policy } from "../policies/policy";
import { UseColumns } from "./uses";
import { SegmentLog } from "./segment-log";
import { AddressOracle } from "../device/address-oracle";
import { SimulatedDevice } from "../device/simulated";
import { ImportedDevice } from "../device/imported";
import { STAT_ALLOCATED_BYTES, STAT_RESERVED_BYTES, POOL_ALL } from "../policies/stats";

import {
  ACTION_ALLOC, ACTION_FREE_REQUESTED, ACTION_FREE_COMPLETED, ACTION_SEGMENT_ALLOC, ACTION_SEGMENT_FREE,
  ACTION_SEGMENT_MAP, ACTION_SEGMENT_UNMAP, ACTION_OOM,
} from "./actions";

/** Counters the replay keeps besides the policy's stats (read by the TypeScript side by index). */
export const COUNTER_FAILED_ALLOCS: i32 = 0;
export const COUNTER_UNEXPECTED_OOM_SUCCESSES: i32 = 1;
export const COUNTER_EMPTY_CACHE_CALLS: i32 = 2;
export const COUNTER_UNKNOWN_FREES: i32 = 3;
export const COUNTER_SELF_COMPLETED_FREES: i32 = 4;
/** allocs placed at another address than the trace recorded (traces that record addresses) */
export const COUNTER_ADDRESS_MISMATCHES: i32 = 5;
/** allocations filled with the check pattern and checked before their free (verifyData) */
export const COUNTER_VERIFIED_ALLOCATIONS: i32 = 6;
/** of those, the ones whose pattern had changed */
export const COUNTER_VERIFY_FAILURES: i32 = 7;
/**
 * uses (simulated device, policies that read uses) whose block was not wholly mapped with access
 * when the operator ran: on a GPU, an illegal-address fault. Checked against the device's own
 * mappings, not the policy's tables.
 */
export const COUNTER_USES_WITHOUT_ACCESS: i32 = 8;
export const COUNTERS: i32 = 9;

export class EventColumns {
  length: i32;
  action: usize;
  addr: usize;
  size: usize;
  stream: usize;
  blockId: usize;

  constructor(length: i32) {
    this.length = length;
    const n = <usize>max(length, 1);
    this.action = heap.alloc(n);
    this.addr = heap.alloc(n << 3);
    this.size = heap.alloc(n << 3);
    this.stream = heap.alloc(n << 2);
    this.blockId = heap.alloc(n << 2);
  }

  @inline actionAt(i: i32): u8 { return load<u8>(this.action + <usize>i); }
  @inline addrAt(i: i32): u64 { return <u64>load<f64>(this.addr + (<usize>i << 3)); }
  @inline sizeAt(i: i32): u64 { return <u64>load<f64>(this.size + (<usize>i << 3)); }
  @inline streamAt(i: i32): i32 { return load<i32>(this.stream + (<usize>i << 2)); }
  @inline blockIdAt(i: i32): i32 { return load<i32>(this.blockId + (<usize>i << 2)); }
}

/** Whether every byte of [va, va + bytes) is mapped with access on the simulated device. */
function accessibleOn(device: SimulatedDevice, va: u64, bytes: u64): bool {
  const ranges = device.accessible;
  const end = va + bytes;
  let at = va;
  while (at < end) {
    const i = ranges.containing(at);
    if (i < 0) return false;
    at = ranges.start(i) + ranges.size(i);
  }
  return true;
}

/** The trace's segment events, registered with the oracle before the first event. */
export function buildOracle(events: EventColumns): AddressOracle {
  let mallocs = 0;
  let maps = 0;
  for (let i = 0; i < events.length; i++) {
    const a = events.actionAt(i);
    if (a == ACTION_SEGMENT_ALLOC) mallocs++;
    else if (a == ACTION_SEGMENT_MAP) maps++;
  }
  const oracle = new AddressOracle(mallocs, maps);
  for (let i = 0; i < events.length; i++) {
    const a = events.actionAt(i);
    if (a == ACTION_SEGMENT_ALLOC) oracle.addMalloc(events.addrAt(i), events.sizeAt(i), i);
    else if (a == ACTION_SEGMENT_MAP) oracle.addMap(events.addrAt(i), i);
  }
  return oracle;
}

export class Replay {
  policy: Policy;
  events: EventColumns;
  log: SegmentLog;
  /** trace block id -> policy handle, -1 when not live */
  handles: StaticArray<i32>;
  counters: StaticArray<i64> = new StaticArray<i64>(COUNTERS);
  /** the number of the invariant isValid found broken, 0 when none */
  brokenInvariant: i32 = 0;
  /** the policy's local invariant check after every event (Policy.brokenLocalInvariant) */
  localCheck: bool = false;
  private inBurst: bool = false;
  /** the simulated device's address oracle, when the replay takes addresses from the trace */
  private oracle: AddressOracle | null = null;
  /** the last alloc/oom event replayed: the segment events of the next request come after it */
  private lastRequest: i32 = -1;
  // free_completed events held back until the burst after them is resolved
  private deferred: StaticArray<i32> = new StaticArray<i32>(16);
  private deferredCount: i32 = 0;
  private completedRunEnd: i32 = -1;
  private completedRunPrecedesBurst: bool = false;
  /** the events before which the trace says empty_cache was called, ascending; null: inferred from bursts */
  private emptyCacheMarks: StaticArray<i32> | null = null;
  private nextMark: i32 = 0;

  /** the trace's use events, when the policy reads them (setUses) */
  private uses: UseColumns | null = null;
  /** the simulated device, whose mappings say whether a used block is on the device */
  private simulated: SimulatedDevice | null = null;
  /** the first use not yet handed to the policy */
  private useCursor: i32 = 0;
  /** the handles of one position's uses, handed to the policy */
  private useHandles: StaticArray<i32> = new StaticArray<i32>(16);

  /** the device that checks data, when verifyData is on (live replays only) */
  private verifier: ImportedDevice | null = null;
  /** trace block id -> the seed its pattern was written with, -1 when not filled or checked */
  private patternSeed: StaticArray<i32> = new StaticArray<i32>(0);
  /** the event at which the first changed pattern was found, -1: none */
  firstVerifyFailure: i32 = -1;

  /** the first alloc placed at another address than the trace recorded, -1: none */
  firstAddressMismatch: i32 = -1;
  peakReservedBytes: i64 = 0;
  peakReservedEvent: i32 = -1;

  // timeline: the highest allocated and reserved bytes in each window of `window` events
  window: i32 = 0;
  timelineCount: i32 = 0;
  timelineEvent: StaticArray<f64> = new StaticArray<f64>(0);
  timelineAllocated: StaticArray<f64> = new StaticArray<f64>(0);
  timelineReserved: StaticArray<f64> = new StaticArray<f64>(0);

  constructor(policy: Policy, events: EventColumns, blockIds: i32) {
    this.policy = policy;
    this.events = events;
    this.log = policy.log;
    this.handles = new StaticArray<i32>(max(blockIds, 1));
    const device = policy.device;
    if (device instanceof SimulatedDevice) {
      this.oracle = (<SimulatedDevice>device).oracle;
      this.simulated = <SimulatedDevice>device;
    }
    for (let i = 0; i < this.handles.length; i++) unchecked((this.handles[i] = -1));
  }

  /** Records a timeline of about `points` points (0: none). */
  setTimeline(points: i32): void {
    if (points <= 0 || this.events.length == 0) return;
    this.window = (this.events.length + points - 1) / points;
    const n = (this.events.length + this.window - 1) / this.window;
    this.timelineEvent = new StaticArray<f64>(n);
    this.timelineAllocated = new StaticArray<f64>(n);
    this.timelineReserved = new StaticArray<f64>(n);
  }

  /** Turns data verification on (before the first event); the device must be an imported one. */
  setVerifyData(device: ImportedDevice): void {
    this.verifier = device;
    this.patternSeed = new StaticArray<i32>(this.handles.length);
    for (let i = 0; i < this.patternSeed.length; i++) unchecked((this.patternSeed[i] = -1));
  }

  /** Hands the trace's use events to a policy that reads them (before the first event). */
  setUses(uses: UseColumns): void {
    if (!this.policy.readsUses()) return;
    this.uses = uses;
    this.policy.beginUses(uses);
  }

  /**
   * The uses recorded before event `position` (position == events: after the last one), to the
   * policy one operator at a time.
   */
  private deliverUses(position: i32): void {
    const uses = changetype<UseColumns>(this.uses);
    let u = this.useCursor;
    while (u < uses.length && uses.positionAt(u) < position) u++; // INV-USE-2: none, kept for safety
    while (u < uses.length && uses.positionAt(u) == position) {
      const first = u;
      const op = uses.operatorAt(u);
      while (u < uses.length && uses.positionAt(u) == position && uses.operatorAt(u) == op) u++;
      this.deliverGroup(position, first, u - first);
    }
    this.useCursor = u;
  }

  /** One operator's uses, [first, first + count), to the policy; then the device's own check. */
  private deliverGroup(position: i32, first: i32, count: i32): void {
    const uses = changetype<UseColumns>(this.uses);
    if (count > this.useHandles.length) this.useHandles = new StaticArray<i32>(max(count, this.useHandles.length << 1));
    for (let k = 0; k < count; k++) unchecked((this.useHandles[k] = this.handleOf(uses.blockIdAt(first + k))));
    this.policy.useBlocks(position, this.useHandles, first, count);
    const oracle = this.simulated;
    if (oracle != null) {
      for (let k = 0; k < count; k++) {
        const h = unchecked(this.useHandles[k]);
        if (h >= 0 && !accessibleOn(oracle, this.policy.handleAddress(h), this.policy.handleSize(h))) {
          unchecked((this.counters[COUNTER_USES_WITHOUT_ACCESS] += 1));
        }
      }
    }
  }

  /**
   * The trace names its empty_cache calls (before the first event): room for `count` event indices,
   * ascending, which the caller writes (index == events: after the last event).
   */
  setEmptyCacheMarks(count: i32): StaticArray<i32> {
    const marks = new StaticArray<i32>(count);
    this.emptyCacheMarks = marks;
    return marks;
  }

  /** The marked empty_cache calls before event i (i == events: at the end). */
  private markedEmptyCaches(i: i32): void {
    const marks = changetype<StaticArray<i32>>(this.emptyCacheMarks);
    while (this.nextMark < marks.length && unchecked(marks[this.nextMark]) <= i) {
      this.nextMark++;
      this.emptyCache();
    }
  }

  private emptyCache(): void {
    unchecked((this.counters[COUNTER_EMPTY_CACHE_CALLS] += 1));
    this.policy.emptyCache();
    this.drainSelfCompleted();
    this.completeDeferred();
  }

  /** A block adopted from the initial state. */
  adoptHandle(blockId: i32, handle: i32): void {
    if (blockId >= 0 && blockId < this.handles.length) unchecked((this.handles[blockId] = handle));
  }

  /**
   * Replays events [from, to). Returns -1, or the index of the event after which isValid failed:
   * the whole walk every `checkEvery` events (0: never), the local check after every other event
   * when localCheck is on.
   */
  run(from: i32, to: i32, checkEvery: i32): i32 {
    const events = this.events;
    const policy = this.policy;
    const stats = policy.stats;
    const usesOn = this.uses != null;
    const marked = this.emptyCacheMarks != null;
    for (let i = from; i < to; i++) {
      this.log.currentEvent = i;
      if (marked) this.markedEmptyCaches(i);
      if (usesOn) {
        this.deliverUses(i);
        // the uses' own check (the policy may move what they used once the event runs)
        if (this.localCheck) {
          const broken = policy.brokenInvariantChecked(false);
          if (broken != 0) {
            this.brokenInvariant = broken;
            return i;
          }
        }
      }
      const action = events.actionAt(i);
      if (action == ACTION_ALLOC) {
        this.startRequest(i);
        const h = policy.malloc(events.sizeAt(i), events.streamAt(i));
        this.drainSelfCompleted();
        this.completeDeferred();
        const id = events.blockIdAt(i);
        if (h < 0) {
          unchecked((this.counters[COUNTER_FAILED_ALLOCS] += 1));
        } else {
          const recordedAddr = events.addrAt(i);
          if (recordedAddr != 0 && recordedAddr != policy.handleAddress(h)) {
            unchecked((this.counters[COUNTER_ADDRESS_MISMATCHES] += 1));
            if (this.firstAddressMismatch < 0) this.firstAddressMismatch = i;
          }
          policy.setTraceId(h, id);
          if (id >= 0 && id < this.handles.length) {
            unchecked((this.handles[id] = h));
            if (this.verifier) this.fill(id, h, i);
          }
        }
      } else if (action == ACTION_FREE_REQUESTED) {
        const h = this.handleOf(events.blockIdAt(i));
        if (h >= 0 && this.verifier) this.check(events.blockIdAt(i), h, i);
        if (h >= 0) policy.freeRequest(h);
        else unchecked((this.counters[COUNTER_UNKNOWN_FREES] += 1));
      } else if (action == ACTION_FREE_COMPLETED) {
        const id = events.blockIdAt(i);
        const h = this.handleOf(id);
        if (h >= 0) {
          if (!marked && !this.completedAtOnce(i) && this.precedesBurst(i)) {
            this.defer(id);
          } else {
            policy.freeComplete(h);
            unchecked((this.handles[id] = -1));
          }
        }
      } else if (action == ACTION_SEGMENT_FREE || action == ACTION_SEGMENT_UNMAP) {
        if (!marked && !this.inBurst) this.startBurst(i);
      } else if (action == ACTION_OOM) {
        this.startRequest(i);
        const h = policy.malloc(events.sizeAt(i), events.streamAt(i));
        this.drainSelfCompleted();
        this.completeDeferred();
        if (h >= 0) {
          unchecked((this.counters[COUNTER_UNEXPECTED_OOM_SUCCESSES] += 1));
          if (this.verifier) {
            this.fillBlock(h, i);
            this.checkBlock(h, i, i);
          }
          policy.freeRequest(h);
          policy.freeComplete(h);
        }
      }
      if (action != ACTION_SEGMENT_FREE && action != ACTION_SEGMENT_UNMAP) this.inBurst = false;

      const reserved = stats.current(STAT_RESERVED_BYTES, POOL_ALL);
      if (reserved > this.peakReservedBytes) {
        this.peakReservedBytes = reserved;
        this.peakReservedEvent = i;
      }
      if (this.window > 0) this.sample(i, stats.current(STAT_ALLOCATED_BYTES, POOL_ALL), reserved);
      const full = checkEvery > 0 && (i + 1) % checkEvery == 0;
      if (full || this.localCheck) {
        const broken = policy.brokenInvariantChecked(full);
        if (broken != 0) {
          this.brokenInvariant = broken;
          return i;
        }
      }
    }
    if (to == events.length) {
      if (marked) this.markedEmptyCaches(to);
      if (usesOn) this.deliverUses(to);
      this.completeDeferred();
      if (this.verifier) this.checkLive();
    }
    return -1;
  }

  private fill(id: i32, h: i32, seed: i32): void {
    this.fillBlock(h, seed);
    unchecked((this.patternSeed[id] = seed));
  }

  /** Checks block id's pattern once (at its free request, or at the end while still live). */
  private check(id: i32, h: i32, at: i32): void {
    const seed = unchecked(this.patternSeed[id]);
    if (seed < 0) return;
    unchecked((this.patternSeed[id] = -1));
    this.checkBlock(h, seed, at);
  }

  private fillBlock(h: i32, seed: i32): void {
    const bytes = this.policy.handleSize(h);
    if (bytes > 0) changetype<ImportedDevice>(this.verifier).fillPattern(this.policy.handleAddress(h), bytes, seed);
  }

  private checkBlock(h: i32, seed: i32, at: i32): void {
    const bytes = this.policy.handleSize(h);
    if (bytes == 0) return;
    unchecked((this.counters[COUNTER_VERIFIED_ALLOCATIONS] += 1));
    if (changetype<ImportedDevice>(this.verifier).checkPattern(this.policy.handleAddress(h), bytes, seed) != 0) {
      unchecked((this.counters[COUNTER_VERIFY_FAILURES] += 1));
      if (this.firstVerifyFailure < 0) this.firstVerifyFailure = at;
    }
  }

  /** The end of the trace: allocations never freed are checked while still live. */
  private checkLive(): void {
    for (let id = 0; id < this.handles.length; id++) {
      const h = unchecked(this.handles[id]);
      if (h >= 0) this.check(id, h, this.events.length - 1);
    }
  }

  /** A request at event i: its segment events are those recorded since the previous request. */
  @inline private startRequest(i: i32): void {
    const oracle = this.oracle;
    if (oracle) oracle.notBefore = this.lastRequest + 1;
    this.lastRequest = i;
  }

  /**
   * Did the free of event i (a free_completed) complete inside the free call itself? PyTorch's
   * free() records free_requested and, for a block no other stream used, free_completed right after
   * it, with nothing between. Such a completion is a plain free even right before a segment_free
   * burst (the garbage collection of the next malloc frees without synchronizing); only completions
   * that stand apart from their request can be the work of a synchronization.
   */
  private completedAtOnce(i: i32): bool {
    const events = this.events;
    return i > 0 && events.actionAt(i - 1) == ACTION_FREE_REQUESTED && events.blockIdAt(i - 1) == events.blockIdAt(i);
  }

  /** Is event i (a free_completed) followed, past other free_completed events, by a segment_free/unmap? */
  private precedesBurst(i: i32): bool {
    if (i <= this.completedRunEnd) return this.completedRunPrecedesBurst;
    const events = this.events;
    let j = i + 1;
    while (j < events.length && events.actionAt(j) == ACTION_FREE_COMPLETED) j++;
    this.completedRunEnd = j - 1;
    this.completedRunPrecedesBurst = j < events.length &&
      (events.actionAt(j) == ACTION_SEGMENT_FREE || events.actionAt(j) == ACTION_SEGMENT_UNMAP);
    return this.completedRunPrecedesBurst;
  }

  private defer(id: i32): void {
    if (this.deferredCount == this.deferred.length) {
      const grown = new StaticArray<i32>(this.deferred.length * 2);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.deferred), <usize>this.deferredCount << 2);
      this.deferred = grown;
    }
    unchecked((this.deferred[this.deferredCount++] = id));
  }

  /** Completes the deferred frees the policy's synchronization did not reach. */
  private completeDeferred(): void {
    for (let k = 0; k < this.deferredCount; k++) {
      const id = unchecked(this.deferred[k]);
      const h = this.handleOf(id);
      if (h >= 0) {
        this.policy.freeComplete(h);
        unchecked((this.handles[id] = -1));
      }
    }
    this.deferredCount = 0;
  }

  @inline private handleOf(id: i32): i32 {
    return id >= 0 && id < this.handles.length ? unchecked(this.handles[id]) : -1;
  }

  /** A segment_free/unmap burst begins at event i: empty_cache, or the next malloc's own work? */
  private startBurst(i: i32): void {
    this.inBurst = true;
    const events = this.events;
    let j = i + 1;
    while (j < events.length) {
      const a = events.actionAt(j);
      if (a == ACTION_ALLOC || a == ACTION_OOM) break;
      j++;
    }
    if (j < events.length && this.policy.mallocWouldRelease(events.sizeAt(j), events.streamAt(j))) return;
    this.emptyCache();
  }

  /** Blocks whose pending free the policy completed itself: their free_completed will be skipped. */
  private drainSelfCompleted(): void {
    const policy = this.policy;
    const n = policy.selfCompletedCount;
    if (n == 0) return;
    for (let k = 0; k < n; k++) {
      const id = policy.selfCompleted[k];
      if (id >= 0 && id < this.handles.length) unchecked((this.handles[id] = -1));
    }
    unchecked((this.counters[COUNTER_SELF_COMPLETED_FREES] += n));
    policy.selfCompletedCount = 0;
  }

  private sample(i: i32, allocated: i64, reserved: i64): void {
    const w = i / this.window;
    if (w >= this.timelineCount) {
      this.timelineCount = w + 1;
      this.timelineAllocated[w] = 0;
      this.timelineReserved[w] = 0;
    }
    this.timelineEvent[w] = <f64>i;
    if (<f64>allocated > this.timelineAllocated[w]) this.timelineAllocated[w] = <f64>allocated;
    if (<f64>reserved > this.timelineReserved[w]) this.timelineReserved[w] = <f64>reserved;
  }
}
