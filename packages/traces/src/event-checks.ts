/**
 * The importer's checks that what a trace asks of a policy is something a policy can do. A file can
 * be a well-formed snapshot and still ask the impossible; the policies (core-sim, in WebAssembly)
 * assert their own invariants and would stop with an internal assertion that names a source line of
 * the policy. These checks refuse such a trace first, with the usual one line (file, device, event
 * index), and they define the range of values lakebed accepts, which the Arrow format holds exactly
 * (arrow-format.ts) and the round-trip property test covers (test/convert-round-trip.test.ts):
 *
 *   device ordinal   0 .. 2^31-1        CUDA's device ordinal is a C int
 *   stream           0 .. 2^64-1        a cudaStream_t is a pointer
 *   size             0 .. 2^47 bytes    for the actions a policy serves (alloc, free, segment and
 *                                       oom entries) and for the segments of a snapshot: CUDA's
 *                                       unified addressing puts every device allocation in the
 *                                       process's address space, 2^47 bytes for user space on
 *                                       x86-64 Linux, so no allocation is larger; a policy rounds
 *                                       and sums sizes, and must stay exact in a float64 (2^53)
 *   addr             0 .. 2^53-1        INV-TRACE-4 (column-builder.ts checks it as entries arrive)
 *   frees            each allocation's free_requested comes once, and before its free_completed
 *                    (PyTorch records both, in that order; a block pending at the start of a trace
 *                    that starts mid-run had its free_requested before the trace)
 *
 * Each check returns the first problem as { detail, eventIndex } (eventIndex absent where the
 * problem is in the snapshot's segments), or null.
 */
import { Action, ACTION_NAMES, type EventColumns, type SegmentState } from "./model.js";

export const MAX_DEVICE_ORDINAL = 2 ** 31 - 1;
export const MAX_STREAM = 2n ** 64n - 1n;
export const MAX_ALLOCATION_BYTES = 2 ** 47;

export interface EventProblem {
  detail: string;
  eventIndex?: number;
}

export function deviceOrdinalProblem(device: number): EventProblem | null {
  return device <= MAX_DEVICE_ORDINAL ? null : { detail: `device ordinal ${device} is larger than CUDA's (at most ${MAX_DEVICE_ORDINAL})` };
}

/** Sizes a policy would be asked to serve, in the events and in the snapshot's segments. */
export function sizeProblem(events: Pick<EventColumns, "length" | "action" | "size">, segments: readonly SegmentState[]): EventProblem | null {
  const { action, size } = events;
  for (let i = 0; i < events.length; i++) {
    if (size[i] > MAX_ALLOCATION_BYTES && servesMemory(action[i])) {
      return { detail: `${ACTION_NAMES[action[i] as Action]} of ${size[i]} bytes: larger than any device allocation can be (2^47 bytes)`, eventIndex: i };
    }
  }
  for (const s of segments) {
    if (s.totalSize > MAX_ALLOCATION_BYTES) return { detail: `the snapshot's segment at 0x${s.address.toString(16)} has ${s.totalSize} bytes: larger than any device allocation can be (2^47 bytes)` };
  }
  return null;
}

/** Streams outside a cudaStream_t's range: the first event on one, or the snapshot's segments. */
export function streamProblem(streams: readonly bigint[], events: Pick<EventColumns, "length" | "stream">): EventProblem | null {
  const bad = streams.findIndex((s) => s < 0n || s > MAX_STREAM);
  if (bad < 0) return null;
  const detail = `stream ${streams[bad]} is not a cudaStream_t (a pointer, 0 to 2^64-1)`;
  const i = events.stream.indexOf(bad);
  return i >= 0 ? { detail, eventIndex: i } : { detail: `a segment of the snapshot names ${detail}` };
}

/**
 * Each allocation's free_requested once and before its free_completed, by block id (INV-TRACE-3
 * holds: every free names an allocation made so far). `initialState` gives the blocks already
 * pending at the start.
 */
export function freeOrderProblem(events: Pick<EventColumns, "length" | "action" | "addr" | "blockId">, initialState: readonly SegmentState[]): EventProblem | null {
  const { action, blockId } = events;
  let ids = 0;
  for (let i = 0; i < events.length; i++) ids = Math.max(ids, blockId[i] + 1);
  // the event at which each block's free was requested; BEFORE_TRACE for blocks pending at the start
  const NOT_REQUESTED = -1;
  const BEFORE_TRACE = -2;
  const requestedAt = new Int32Array(ids).fill(NOT_REQUESTED);
  for (const seg of initialState) {
    for (const b of seg.blocks) if (b.state === "pending_free" && b.blockId >= 0 && b.blockId < ids) requestedAt[b.blockId] = BEFORE_TRACE;
  }
  for (let i = 0; i < events.length; i++) {
    const a = action[i];
    if (a === Action.FreeRequested) {
      const at = requestedAt[blockId[i]];
      if (at !== NOT_REQUESTED) {
        const when = at === BEFORE_TRACE ? "before the trace starts" : `at event ${at}`;
        return { detail: `free_requested of 0x${events.addr[i].toString(16)}, whose free was already requested ${when}`, eventIndex: i };
      }
      requestedAt[blockId[i]] = i;
    } else if (a === Action.FreeCompleted && requestedAt[blockId[i]] === NOT_REQUESTED) {
      return { detail: `free_completed of 0x${events.addr[i].toString(16)} before its free_requested`, eventIndex: i };
    }
  }
  return null;
}

/** The actions whose size a policy serves or releases (snapshot and other entries only record). */
function servesMemory(action: number): boolean {
  return action !== Action.Snapshot && action !== Action.Other;
}
