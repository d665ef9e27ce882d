/**
 * Rebuilds the allocator state just before a device's first trace event, by starting from the final
 * `segments` and undoing the events from the last back to the first: the method of PyTorch's own
 * viewer (reference B8, "Allocator State History"). A trace is complete when nothing is left.
 *
 * Undo rules (each checks the state it expects; a mismatch is a TraceError naming the event):
 *   alloc            the allocated block at addr becomes inactive and merges with inactive neighbours
 *                    (the allocator always coalesces free neighbours, so this is the free block the
 *                    allocation was carved from)
 *   free_completed   re-carve a pending_free block at addr out of the inactive block holding it
 *   free_requested   the pending_free block at addr becomes allocated again
 *   segment_alloc    the segment at addr (one inactive block by now) disappears
 *   segment_free     a segment with one inactive block reappears (pool small iff it is 2 MiB)
 *   segment_map      the mapped range (inactive by now) leaves its expandable segment, which shrinks,
 *                    splits in two, or disappears
 *   segment_unmap    the range comes back as inactive memory, merged with adjacent expandable segments
 *                    of the same stream and pool
 *
 * The approximation: going backwards, a free_completed does not say how large the freed block was
 * (events record the caller's request). It is re-carved as PyTorch would have carved it: the request
 * rounded per A3 with the recorded settings, and the whole free run instead when the remainder is
 * too small to split off per A6. This is exact unless a neighbour that was live at allocation time
 * was freed before this block; then the block's unsplit tail (at most 1 MiB) shows up as a separate
 * inactive block. In the large pool of ordinary segments no free block can be that small (a split
 * leaves more than 1 MiB, and every large block is larger than 1 MiB), so such a piece is folded back
 * into the live block before it (foldUnsplitTail) wherever undoing reveals one: when an allocation
 * right after it is undone (a later alloc that PyTorch placed just past the tail shows where the block
 * really ended), and in the start state. Any allocation whose alloc is also in the trace merges back
 * when that alloc is undone, so the rebuilt start state, and completeness, are exact for them.
 */
import { Action, type AllocatorSettings, type BlockStateKind, type EventColumns, type SegmentState } from "./model.js";
import { TraceError } from "./trace-error.js";
import { power2Divisions, roundRequest, wouldSplit } from "./allocator-rounding.js";

const MIN_BLOCK_BYTES = 512;
const SMALL_SEGMENT_BYTES = 2 * 1024 * 1024;
const LARGE_PAGE_BYTES = 20 * 1024 * 1024;

export interface WorkBlock {
  address: number;
  size: number;
  requestedSize: number;
  state: BlockStateKind;
  /** index of the free_requested event that brought this block back to life while undoing, or -1 */
  origin: number;
}

/** A segment while undoing. Invariant: blocks in address order tile [address, address + totalSize). */
export interface WorkSegment {
  address: number;
  totalSize: number;
  stream: number;
  pool: "small" | "large";
  expandable: boolean;
  blocks: WorkBlock[];
}

export interface UndoContext {
  file: string;
  device: number;
  settings: AllocatorSettings | null;
}

/**
 * The state just before events[0]: `finalState` (sorted by address; left unchanged) with `events`
 * undone from last to first. Blocks carry blockId -1 (block-ids.ts numbers them).
 */
export function rebuildInitialState(finalState: SegmentState[], events: Omit<EventColumns, "blockId">, ctx: UndoContext): SegmentState[] {
  const state = new SegmentMap(finalState.map(toWorkSegment), ctx);
  for (let i = events.length - 1; i >= 0; i--) {
    const addr = events.addr[i];
    const size = events.size[i];
    state.event = i;
    switch (events.action[i] as Action) {
      case Action.Alloc:
        state.undoAlloc(addr);
        break;
      case Action.FreeCompleted:
        state.undoFreeCompleted(addr, size);
        break;
      case Action.FreeRequested:
        state.undoFreeRequested(addr);
        break;
      case Action.SegmentAlloc:
        state.undoSegmentAlloc(addr, size);
        break;
      case Action.SegmentFree:
        state.undoSegmentFree(addr, size, events.stream[i]);
        break;
      case Action.SegmentMap:
        state.undoSegmentMap(addr, size);
        break;
      case Action.SegmentUnmap:
        state.undoSegmentUnmap(addr, size, events.stream[i]);
        break;
      default:
        break;
    }
  }
  for (const seg of state.segments) for (let bi = seg.blocks.length - 1; bi > 0; bi--) foldUnsplitTail(seg, bi);
  return state.segments.map(fromWorkSegment);
}

function toWorkSegment(s: SegmentState): WorkSegment {
  return { ...s, blocks: s.blocks.map((b) => ({ address: b.address, size: b.size, requestedSize: b.requestedSize, state: b.state, origin: -1 })) };
}

function fromWorkSegment(s: WorkSegment): SegmentState {
  const blocks = s.blocks.map((b) => ({ address: b.address, size: b.size, requestedSize: b.requestedSize, state: b.state, blockId: -1 }));
  return { address: s.address, totalSize: s.totalSize, stream: s.stream, pool: s.pool, expandable: s.expandable, blocks };
}

class SegmentMap {
  event = -1;
  private readonly divisions: readonly number[] | null;

  constructor(
    readonly segments: WorkSegment[],
    private readonly ctx: UndoContext,
  ) {
    this.divisions = power2Divisions(ctx.settings);
  }

  undoAlloc(addr: number): void {
    const seg = this.segmentHolding(addr, "alloc");
    const bi = this.blockStartingAt(seg, addr);
    const block = bi < 0 ? undefined : seg.blocks[bi];
    if (block === undefined || block.state !== "allocated") {
      this.fail(`undoing alloc of ${hex(addr)}: expected an allocated block there after it, found ${this.describeAt(seg, addr)}`);
    }
    const at = bi > 0 && foldUnsplitTail(seg, bi - 1) ? bi - 1 : bi;
    block!.state = "inactive";
    block!.origin = -1;
    mergeInactive(seg, at);
  }

  undoFreeCompleted(addr: number, requestBytes: number): void {
    const seg = this.segmentHolding(addr, "free_completed");
    const bi = blockHolding(seg, addr);
    const free = seg.blocks[bi];
    if (free.state !== "inactive") {
      this.fail(`undoing free_completed of ${hex(addr)}: expected the memory to be free after it, found ${this.describeAt(seg, addr)}`);
    }
    const available = free.address + free.size - addr;
    let rounded = roundRequest(requestBytes, this.divisions);
    if (rounded > available) rounded = Math.max(MIN_BLOCK_BYTES, Math.ceil(requestBytes / MIN_BLOCK_BYTES) * MIN_BLOCK_BYTES);
    if (rounded > available) {
      this.fail(`undoing free_completed of ${hex(addr)}: a block for a ${requestBytes}-byte request needs ${rounded} bytes, only ${available} are free there`);
    }
    const size = wouldSplit(rounded, available - rounded, seg, this.ctx.settings) ? rounded : available;
    // carve in place: `free` keeps whichever piece comes first, new objects only for the others
    const block: WorkBlock = { address: addr, size, requestedSize: requestBytes, state: "pending_free", origin: -1 };
    const tail = size < available ? inactive(addr + size, available - size, free.requestedSize) : undefined;
    if (addr > free.address) {
      free.size = addr - free.address;
      if (tail === undefined) seg.blocks.splice(bi + 1, 0, block);
      else seg.blocks.splice(bi + 1, 0, block, tail);
    } else if (tail === undefined) {
      seg.blocks[bi] = block;
    } else {
      seg.blocks[bi] = block;
      seg.blocks.splice(bi + 1, 0, tail);
    }
  }

  undoFreeRequested(addr: number): void {
    const seg = this.segmentHolding(addr, "free_requested");
    const bi = this.blockStartingAt(seg, addr);
    const block = bi < 0 ? undefined : seg.blocks[bi];
    if (block === undefined || block.state !== "pending_free") {
      this.fail(`undoing free_requested of ${hex(addr)}: expected a block waiting for its free to complete there, found ${this.describeAt(seg, addr)}`);
    }
    block!.state = "allocated";
    block!.origin = this.event;
  }

  undoSegmentAlloc(addr: number, size: number): void {
    const si = this.segmentIndexHolding(addr);
    const seg = si < 0 ? undefined : this.segments[si];
    if (seg === undefined || seg.address !== addr || seg.totalSize !== size) {
      this.fail(`undoing segment_alloc of ${size} bytes at ${hex(addr)}: no such segment in the state after it`);
    }
    this.expectAllInactive(seg!, 0, size, "segment_alloc");
    this.segments.splice(si, 1);
  }

  undoSegmentFree(addr: number, size: number, stream: number): void {
    const pool = size === SMALL_SEGMENT_BYTES ? "small" : "large";
    this.insertSegment({ address: addr, totalSize: size, stream, pool, expandable: false, blocks: [inactive(addr, size, 0)] }, "segment_free");
  }

  undoSegmentMap(addr: number, size: number): void {
    const si = this.segmentIndexHolding(addr);
    const seg = si < 0 ? undefined : this.segments[si];
    const end = addr + size;
    if (seg === undefined || end > seg.address + seg.totalSize) {
      this.fail(`undoing segment_map of ${size} bytes at ${hex(addr)}: that range is not inside one mapped segment after it`);
    }
    const s = seg!;
    this.expectAllInactive(s, addr - s.address, size, "segment_map");
    const bi = blockHolding(s, addr);
    const free = s.blocks[bi];
    const segEnd = s.address + s.totalSize;
    const before = s.blocks.slice(0, bi);
    const after = s.blocks.slice(bi + 1);
    if (free.address < addr) before.push(inactive(free.address, addr - free.address, free.requestedSize));
    if (free.address + free.size > end) after.unshift(inactive(end, free.address + free.size - end, free.requestedSize));
    const replacement: WorkSegment[] = [];
    if (addr > s.address) replacement.push({ ...s, totalSize: addr - s.address, blocks: before });
    if (end < segEnd) replacement.push({ ...s, address: end, totalSize: segEnd - end, blocks: after });
    this.segments.splice(si, 1, ...replacement);
  }

  undoSegmentUnmap(addr: number, size: number, stream: number): void {
    const end = addr + size;
    const li = this.segmentIndexHolding(addr - 1);
    const left = li < 0 ? undefined : this.segments[li];
    const ri = this.segmentIndexHolding(end);
    const right = ri < 0 ? undefined : this.segments[ri];
    const joins = (s: WorkSegment | undefined): s is WorkSegment => s !== undefined && s.expandable && s.stream === stream;
    const leftJoins = joins(left) && left.address + left.totalSize === addr;
    const rightJoins = joins(right) && right.address === end && (!leftJoins || right.pool === left!.pool);
    // without a neighbour, the pool is a guess from the page size: large pages are 20 MiB (A12)
    const pool = leftJoins ? left!.pool : rightJoins ? right!.pool : size % LARGE_PAGE_BYTES === 0 ? "large" : "small";
    const range: WorkSegment = { address: addr, totalSize: size, stream, pool, expandable: true, blocks: [inactive(addr, size, 0)] };
    if (!leftJoins && !rightJoins) {
      this.insertSegment(range, "segment_unmap");
      return;
    }
    this.expectNoOverlap(addr, size, "segment_unmap", leftJoins ? li : -1, rightJoins ? ri : -1);
    const first = leftJoins ? left! : range;
    if (leftJoins) {
      first.blocks.push(range.blocks[0]);
      first.totalSize += size;
      mergeInactive(first, first.blocks.length - 1);
    }
    if (rightJoins) {
      const junction = first.blocks.length - 1;
      first.blocks.push(...right!.blocks);
      first.totalSize += right!.totalSize;
      mergeInactive(first, junction);
      this.segments.splice(ri, 1);
    }
    if (!leftJoins) this.segments.splice(this.insertionIndex(addr), 0, first);
  }

  // --- lookups ---

  /** index of the segment whose range holds addr, or -1 */
  segmentIndexHolding(addr: number): number {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = segs[mid];
      if (addr < s.address) hi = mid - 1;
      else if (addr >= s.address + s.totalSize) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  private insertionIndex(addr: number): number {
    let lo = 0;
    let hi = this.segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.segments[mid].address < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private segmentHolding(addr: number, action: string): WorkSegment {
    const si = this.segmentIndexHolding(addr);
    if (si < 0) this.fail(`undoing ${action} of ${hex(addr)}: that address is in no segment of the state after it`);
    return this.segments[si];
  }

  private blockStartingAt(seg: WorkSegment, addr: number): number {
    const bi = blockHolding(seg, addr);
    return seg.blocks[bi].address === addr ? bi : -1;
  }

  private insertSegment(seg: WorkSegment, action: string): void {
    this.expectNoOverlap(seg.address, seg.totalSize, action, -1, -1);
    this.segments.splice(this.insertionIndex(seg.address), 0, seg);
  }

  private expectNoOverlap(addr: number, size: number, action: string, ...allowed: number[]): void {
    const at = this.insertionIndex(addr);
    for (const i of [at - 1, at]) {
      const s = this.segments[i];
      if (s === undefined || allowed.includes(i)) continue;
      if (s.address < addr + size && addr < s.address + s.totalSize) {
        this.fail(`undoing ${action} of ${size} bytes at ${hex(addr)}: it overlaps the segment at ${hex(s.address)} in the state after it`);
      }
    }
  }

  /** The range [offset, offset+size) of seg must be free memory; a live block there is reported. */
  private expectAllInactive(seg: WorkSegment, offset: number, size: number, action: string): void {
    const from = seg.address + offset;
    const to = from + size;
    for (const b of seg.blocks) {
      if (b.address + b.size <= from || b.address >= to || b.state === "inactive") continue;
      if (b.origin >= 0) {
        throw new TraceError(this.ctx.file, `free of address ${hex(b.address)} that was never allocated (its memory was obtained by the ${action} at event ${this.event})`, {
          device: this.ctx.device,
          eventIndex: b.origin,
        });
      }
      this.fail(`undoing ${action} at ${hex(seg.address)}: the block at ${hex(b.address)} is still ${b.state} (the trace ends with a block live that it never allocated)`);
    }
  }

  private describeAt(seg: WorkSegment, addr: number): string {
    const b = seg.blocks[blockHolding(seg, addr)];
    const where = b.address === addr ? "" : ` starting at ${hex(b.address)}`;
    return `a ${b.state.replace("_", " ")} block of ${b.size} bytes${where}`;
  }

  private fail(detail: string): never {
    throw new TraceError(this.ctx.file, detail, { device: this.ctx.device, eventIndex: this.event });
  }
}

/** index of the block of seg that holds addr (addr must be inside seg) */
function blockHolding(seg: WorkSegment, addr: number): number {
  const blocks = seg.blocks;
  let lo = 0;
  let hi = blocks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (blocks[mid].address <= addr) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The most a large-pool block can leave unsplit: PyTorch splits only remainders above it (A6). */
const SMALL_REQUEST_BYTES = 1024 * 1024;

/**
 * Folds the block at bi into the live block before it when it can only be that block's unsplit tail:
 * an inactive piece of at most 1 MiB in the large pool of an ordinary segment. Returns whether it did.
 */
function foldUnsplitTail(seg: WorkSegment, bi: number): boolean {
  const tail = seg.blocks[bi];
  const owner = seg.blocks[bi - 1];
  if (seg.pool !== "large" || seg.expandable || tail.state !== "inactive" || tail.size > SMALL_REQUEST_BYTES) return false;
  if (owner === undefined || owner.state === "inactive") return false;
  owner.size += tail.size;
  seg.blocks.splice(bi, 1);
  return true;
}

/** Merges the block at bi with inactive neighbours, if it is inactive itself. */
function mergeInactive(seg: WorkSegment, bi: number): void {
  const blocks = seg.blocks;
  if (blocks[bi].state !== "inactive") return;
  let first = bi;
  let last = bi;
  while (first > 0 && blocks[first - 1].state === "inactive") first--;
  while (last < blocks.length - 1 && blocks[last + 1].state === "inactive") last++;
  if (first === last) return;
  const merged = blocks[first];
  const tail = blocks[last];
  merged.size = tail.address + tail.size - merged.address;
  blocks.splice(first + 1, last - first);
}

function inactive(address: number, size: number, requestedSize: number): WorkBlock {
  return { address, size, requestedSize, state: "inactive", origin: -1 };
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
