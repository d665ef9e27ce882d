// A trace recorded mid-run, made replayable on a live device: the rebuilt start state (traces'
// initial-state.ts) becomes a prologue of ordinary trace events that the policy replays before the
// trace's first event, so that every segment and live block of the start state is memory the
// policy really created through its Device (cudaMalloc, or memCreate + map + setAccess) and the
// driver knows.
//
// Why a prologue of events, not adoption calls that allocate: the simulator's adoption hands the
// policy a layout at the trace's own addresses and tells the device what it holds, which a real
// driver cannot do (it chooses the addresses, and memory it did not hand out does not exist). A
// prologue goes through the same malloc/free paths as every other event, so the same compiled
// policy, the same device calls and the same --verify-data checks hold for it: each live block is
// filled with the check pattern when the prologue allocates it and checked at its free in the
// trace; and the simulator can replay the very same prologue, so live and simulated replays of a
// mid-run trace make the same calls.
//
// The prologue, per policy (the registry's rebuildsRecordedLayout):
//   rebuilds the layout (caching, expandable): the segments in ascending address order; in each,
//     an opener (a large ordinary segment of several blocks: one allocation of the whole segment,
//     freed at once, so that the segment has the recorded size rather than the size the first
//     block would ask for), then every block in address order: a live block is allocated (its
//     recorded request, its trace block id; a pending free one is free-requested right after, and
//     its free_completed is the trace's), a cached (inactive) block is allocated as a placeholder,
//     in pieces of at most 1 MiB in the small pool. A live block larger than the policy carves for
//     its request (PyTorch left its remainder unsplit, 1 MiB or less) is carved at its recorded size
//     by a stand-in, and once the whole segment is carved the stand-in is freed and the block
//     allocated with its own request into that hole, which leaves the same remainder unsplit. After
//     the last segment the placeholders are freed, and they become the cached free blocks. Each
//     allocation is carved from the front of the only free block of its pool and stream
//     (everything before it is occupied), so the blocks land at the recorded offsets.
//   allocates afresh (vms, lakebed): the live blocks alone, in snapshot order, exactly what the
//     policy's adoption does on the simulator (Policy.adoptAfresh): the cache is dropped.
//
// What can differ from the recorded state (StartStateReport counts the segments rebuilt exactly):
// an expandable reservation's mapped ranges are packed from its base (unmapped gaps between
// recorded ranges are not reproduced); a cached block whose size is no size the policy carves
// (roundup_power2_divisions, or a large-pool piece of 1 MiB or less) moves the blocks after it;
// garbage collection under a memory fraction may release an opener before its blocks are carved.
//
// INV-PRO-1  the prologue's events come first; trace event i is event i + prologueEvents.
// INV-PRO-2  prologue blocks that are live at the trace's start keep their trace block ids
//            (0 .. initialLiveBlocks-1); openers, stand-ins and placeholders take ids past every
//            trace id, and each is freed (free_requested, then free_completed) inside the prologue.
import { Action, type DeviceTrace, type EventColumns, type SegmentState } from "@lakebed/traces";
import type { AllocatorConf } from "./conf.js";
import { sizingRules, type SizingRules } from "./sizing.js";

const SMALL_REQUEST_MAX_BYTES = 1024 * 1024;

export interface StartStatePrologue {
  /** the trace with the prologue before its events and an empty start state */
  trace: DeviceTrace;
  /** events of the prologue (INV-PRO-1) */
  events: number;
}

/** Events as growable columns, in the trace model's layout. */
class PrologueEvents {
  action: number[] = [];
  size: number[] = [];
  stream: number[] = [];
  blockId: number[] = [];

  push(action: Action, size: number, stream: number, blockId: number): void {
    this.action.push(action);
    this.size.push(size);
    this.stream.push(stream);
    this.blockId.push(blockId);
  }

  allocAndFree(size: number, stream: number, blockId: number): void {
    this.push(Action.Alloc, size, stream, blockId);
    this.push(Action.FreeRequested, size, stream, blockId);
    this.push(Action.FreeCompleted, size, stream, blockId);
  }
}

export function startStatePrologue(trace: DeviceTrace, conf: AllocatorConf, rebuildsLayout: boolean): StartStatePrologue {
  let nextId = trace.initialLiveBlocks;
  for (let i = 0; i < trace.events.length; i++) if (trace.events.blockId[i] >= nextId) nextId = trace.events.blockId[i] + 1;
  const out = new PrologueEvents();
  const segments = [...trace.initialState].sort((a, b) => a.address - b.address);
  if (rebuildsLayout) {
    const rules = sizingRules(conf);
    const placeholders: Array<{ id: number; size: number; stream: number }> = [];
    for (const s of segments) {
      const opener = openerRequest(s, rules);
      if (opener !== null) out.allocAndFree(opener, s.stream, nextId++);
      const standIns: Array<{ id: number; block: SegmentState["blocks"][number] }> = [];
      for (const b of s.blocks) {
        if (b.state === "inactive") {
          for (const piece of placeholderPieces(b.size, s.pool)) {
            out.push(Action.Alloc, piece, s.stream, nextId);
            placeholders.push({ id: nextId++, size: piece, stream: s.stream });
          }
        } else if (rules.roundSize(b.requestedSize) < b.size && rules.roundSize(b.size) === b.size) {
          out.push(Action.Alloc, b.size, s.stream, nextId);
          standIns.push({ id: nextId++, block: b });
        } else {
          allocLive(out, b.requestedSize, s.stream, b.blockId, b.state === "pending_free");
        }
      }
      for (const { id, block } of standIns) {
        out.push(Action.FreeRequested, block.size, s.stream, id);
        out.push(Action.FreeCompleted, block.size, s.stream, id);
        allocLive(out, block.requestedSize, s.stream, block.blockId, block.state === "pending_free");
      }
    }
    for (const p of placeholders) {
      out.push(Action.FreeRequested, p.size, p.stream, p.id);
      out.push(Action.FreeCompleted, p.size, p.stream, p.id);
    }
  } else {
    for (const s of segments) for (const b of s.blocks) if (b.state !== "inactive") allocLive(out, b.requestedSize, s.stream, b.blockId, b.state === "pending_free");
  }
  return { trace: prepend(trace, out), events: out.action.length };
}

function allocLive(out: PrologueEvents, requested: number, stream: number, blockId: number, pending: boolean): void {
  out.push(Action.Alloc, requested, stream, blockId);
  if (pending) out.push(Action.FreeRequested, requested, stream, blockId);
}

/**
 * The request that makes a new ordinary segment of exactly this segment's size, for a large
 * segment of several blocks (null: none needed, or no request makes it). The first candidate is the
 * size itself; a segment of large_segment_size_mb comes from any request of 1 to 10 MiB, which
 * roundup_power2_divisions may round past the segment's own size, so 2 MiB is tried too.
 */
function openerRequest(s: SegmentState, rules: SizingRules): number | null {
  if (s.expandable || s.pool === "small" || s.blocks.length < 2) return null;
  for (const request of [s.totalSize, 2 * SMALL_REQUEST_MAX_BYTES]) {
    const rounded = rules.roundSize(request);
    if (rules.pool(rounded) === "large" && rules.allocationSize(rounded) === s.totalSize) return request;
  }
  return null;
}

/** A cached block as allocations of its pool: small-pool requests are at most 1 MiB. */
function placeholderPieces(bytes: number, pool: SegmentState["pool"]): number[] {
  if (pool === "large" || bytes <= SMALL_REQUEST_MAX_BYTES) return [bytes];
  const pieces: number[] = [];
  for (let left = bytes; left > 0; left -= SMALL_REQUEST_MAX_BYTES) pieces.push(Math.min(left, SMALL_REQUEST_MAX_BYTES));
  return pieces;
}

function prepend(trace: DeviceTrace, p: PrologueEvents): DeviceTrace {
  const k = p.action.length;
  const ev = trace.events;
  const n = ev.length;
  const events: EventColumns = {
    length: k + n,
    action: new Uint8Array(k + n),
    addr: new Float64Array(k + n),
    size: new Float64Array(k + n),
    stream: new Uint32Array(k + n),
    timeUs: new Float64Array(k + n).fill(NaN),
    blockId: new Int32Array(k + n),
  };
  events.action.set(p.action);
  events.size.set(p.size);
  events.stream.set(p.stream);
  events.blockId.set(p.blockId);
  events.action.set(ev.action, k);
  events.addr.set(ev.addr, k);
  events.size.set(ev.size, k);
  events.stream.set(ev.stream, k);
  events.timeUs.set(ev.timeUs, k);
  events.blockId.set(ev.blockId, k);
  return { ...trace, events, initialState: [], access: trace.access && shiftAccess(trace.access, k) };
}

/** Use events keep pointing at the same trace events (INV-USE-2) once the prologue is before them. */
function shiftAccess(access: NonNullable<DeviceTrace["access"]>, k: number): NonNullable<DeviceTrace["access"]> {
  const shift = (positions: Uint32Array) => positions.map((p) => p + k);
  return {
    ...access,
    operators: { ...access.operators, position: shift(access.operators.position) },
    uses: { ...access.uses, position: shift(access.uses.position) },
  };
}
