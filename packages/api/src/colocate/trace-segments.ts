// Steps and requests, found in an allocator trace. A trace records no step markers, but it shows
// them in its live bytes: a training step (forward, backward, optimizer) or an inference request
// (prompt, then tokens) allocates above the memory the program keeps between steps and gives it
// back before the next one starts. So:
//
//   prologue = the blocks the trace never frees (weights, optimizer state, cuBLAS workspaces):
//              replayed once, at the tenant's start
//   rest(i)  = the least bytes of the other blocks live at event i or later
//   segment  = a maximal run of events during which those bytes stand above rest(i), closed by
//              the event that brings them back; only runs whose peak above rest is at least
//              MIN_PEAK_SHARE of the largest run's are steps or requests (the others are the
//              temporaries of model set-up); a run that joins two requests, because the
//              program holds a request's input until the next request's is allocated, is cut
//              where its bytes come back within 1% of the largest run's peak (splitJoined)
//
// On the recorded traces (test/fixtures/access) this finds gpt2_train's four steps (the optimizer's
// state, created in the first, is kept, so it is prologue), llama_infer's three requests (a
// prompt, then 48 tokens) and llama1b_infer's three (a prompt, then 32 tokens; the first two
// joined by the first's input ids until cut); docs/colocate.md lists them. A segment replays on its own: a block it
// allocates and does not free is freed at its end, and a free of a block from before it is left
// out, so that a step or a request can be replayed any number of times, in any order.
import { Action, type DeviceTrace } from "@lakebed/traces";

/** One replayable stretch of a trace, as operations on blocks numbered from 0 within it. */
export interface TraceSegment {
  /** trace event indices [first, last] */
  firstEvent: number;
  lastEvent: number;
  /** microseconds from the segment's first event to its last */
  durationUs: number;
  ops: SegmentOps;
  /** the most bytes live above the rest level during the segment (requested sizes) */
  peakAboveRestBytes: number;
}

/**
 * Operations as columns: alloc (block id, bytes, stream) or free (block id), at microseconds from
 * the segment's start. INV-SEG-1: every block is allocated once and freed once, the free after the
 * alloc. INV-SEG-2: atUs never decreases.
 */
export interface SegmentOps {
  length: number;
  isAlloc: Uint8Array;
  block: Int32Array;
  bytes: Float64Array;
  stream: Uint32Array;
  atUs: Float64Array;
  /** alloc: the block's address in the trace (to join fingerprints of its content); free: 0 */
  traceAddress: Float64Array;
  blocks: number;
}

export interface SegmentedTrace {
  /** the allocations the program keeps (never freed in the trace): replayed once, all at the tenant's start */
  prologue: SegmentOps;
  prologueDurationUs: number;
  segments: TraceSegment[];
}

/** A device trace cut into its prologue and its steps or requests. */
export function segmentTrace(trace: DeviceTrace): SegmentedTrace {
  if (!trace.complete) throw new Error(`trace device ${trace.device} starts mid-run: its prologue (the model's weights) is not in it; colocate needs a complete trace`);
  const e = trace.events;
  const n = e.length;
  const freed = new Set<number>();
  for (let i = 0; i < n; i++) if (e.action[i] === Action.FreeCompleted) freed.add(e.blockId[i]);
  const sizeOf = new Map<number, number>();
  const live = new Float64Array(n);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    if (e.action[i] === Action.Alloc && freed.has(e.blockId[i])) {
      sizeOf.set(e.blockId[i], e.size[i]);
      bytes += e.size[i];
    } else if (e.action[i] === Action.FreeCompleted) {
      bytes -= sizeOf.get(e.blockId[i]) ?? 0;
    }
    live[i] = bytes;
  }
  const rest = new Float64Array(n);
  let least = Infinity;
  for (let i = n - 1; i >= 0; i--) rest[i] = least = Math.min(least, live[i]);

  const peakOf = ([a, b]: [number, number]) => {
    let peak = 0;
    for (let i = a; i <= b; i++) peak = Math.max(peak, live[i] - rest[b]);
    return peak;
  };
  const strict = runsAbove(live, rest, 0, 0, n - 1);
  // a run holding several requests, joined by what one request holds into the next, is cut
  // between them (splitJoined)
  const slack = SLACK_SHARE * largestOf(strict.map(peakOf));
  const inner = strict.map(([a, b]) => runsAbove(live, rest, slack, a, b).map((r) => ({ close: r[1], peak: peakOf(r) })));
  const floor = MIN_PEAK_SHARE * largestOf(inner.flat().map((r) => r.peak));
  const ranges = strict.flatMap((run, k) => splitJoined(run, inner[k].filter((r) => r.peak >= floor && r.peak > 0).map((r) => r.close)));
  const time = (i: number) => (Number.isFinite(e.timeUs[i]) ? e.timeUs[i] : i);
  const peaks = ranges.map(peakOf);
  const largest = largestOf(peaks);
  const segments: TraceSegment[] = [];
  ranges.forEach(([a, b], k) => {
    if (peaks[k] < MIN_PEAK_SHARE * largest || peaks[k] === 0) return;
    segments.push({ firstEvent: a, lastEvent: b, durationUs: time(b) - time(a), ops: opsOf(trace, a, b, time, (id) => freed.has(id)), peakAboveRestBytes: peaks[k] });
  });
  const prologueEnd = segments.length > 0 ? segments[0].firstEvent - 1 : n - 1;
  const prologue = opsOf(trace, 0, n - 1, time, (id) => !freed.has(id), false);
  prologue.atUs.fill(0); // loaded at the tenant's start, all at once (the optimizer's state too)
  return { prologue, prologueDurationUs: prologueEnd > 0 ? time(prologueEnd) - time(0) : 0, segments };
}

/** Runs of the trace smaller than this share of its largest are set-up temporaries, not steps. */
const MIN_PEAK_SHARE = 0.25;

/**
 * Within a run, live bytes back within this share of the largest run's peak above rest may be the
 * boundary between two requests that the run joins: a program can hold a request's input into the
 * next request (Python frees `ids` when the next request rebinds it, after allocating the new
 * one), so the bytes never come back to rest between them. Kilobytes of token ids against a
 * request's megabytes of activations and KV cache.
 */
const SLACK_SHARE = 0.01;

/** Maximal runs of events in [from, to] whose live bytes stand more than `slack` above rest, each closed by the event that brings them back within it. */
function runsAbove(live: Float64Array, rest: Float64Array, slack: number, from: number, to: number): [number, number][] {
  const ranges: [number, number][] = [];
  let start = -1;
  for (let i = from; i <= to; i++) {
    const above = live[i] - rest[i] > slack;
    if (above && start < 0) start = i;
    if (!above && start >= 0) {
      ranges.push([start, i]);
      start = -1;
    }
  }
  return ranges;
}

/**
 * A run cut where its live bytes come back within the slack between two inner runs that are each
 * a step's or a request's size (`closes`: the events closing those): a piece ends at the event
 * that closes its inner run, and the next starts right after it (the allocations in the valley,
 * the next request's input, are the next request's), so the pieces cover the run. With one such
 * inner run (every recorded trace but llama1b_infer), the run is kept as it is.
 */
function splitJoined(run: [number, number], closes: number[]): [number, number][] {
  const pieces: [number, number][] = [];
  let first = run[0];
  for (const close of closes.slice(0, -1)) {
    pieces.push([first, close]);
    first = close + 1;
  }
  pieces.push([first, run[1]]);
  return pieces;
}

/**
 * The allocations of the blocks `takes` in events [a, b], with their frees there, as operations;
 * with freeAtEnd, blocks still live at b are freed at b (the prologue keeps its blocks).
 */
function opsOf(trace: DeviceTrace, a: number, b: number, time: (i: number) => number, takes: (blockId: number) => boolean, freeAtEnd = true): SegmentOps {
  const e = trace.events;
  const local = new Map<number, number>();
  let nextLocal = 0;
  const isAlloc: number[] = [];
  const block: number[] = [];
  const bytes: number[] = [];
  const stream: number[] = [];
  const atUs: number[] = [];
  const traceAddress: number[] = [];
  const t0 = a <= b ? time(a) : 0;
  for (let i = a; i <= b; i++) {
    const id = e.blockId[i];
    if (e.action[i] === Action.Alloc && takes(id)) {
      local.set(id, nextLocal++);
      isAlloc.push(1), block.push(local.get(id)!), bytes.push(e.size[i]), stream.push(e.stream[i]), atUs.push(time(i) - t0), traceAddress.push(e.addr[i]);
    } else if (e.action[i] === Action.FreeCompleted && local.has(id)) {
      isAlloc.push(0), block.push(local.get(id)!), bytes.push(0), stream.push(0), atUs.push(time(i) - t0), traceAddress.push(0);
      local.delete(id);
    }
  }
  const end = a <= b ? time(b) - t0 : 0;
  if (freeAtEnd) for (const l of local.values()) isAlloc.push(0), block.push(l), bytes.push(0), stream.push(0), atUs.push(end), traceAddress.push(0);
  return {
    length: isAlloc.length,
    isAlloc: Uint8Array.from(isAlloc),
    block: Int32Array.from(block),
    bytes: Float64Array.from(bytes),
    stream: Uint32Array.from(stream),
    atUs: Float64Array.from(atUs),
    traceAddress: Float64Array.from(traceAddress),
    blocks: nextLocal,
  };
}

/** The largest of xs, 0 for none: a loop, since spreading a long trace's runs into Math.max's
 * arguments throws a RangeError past about 100,000 of them. */
function largestOf(xs: readonly number[]): number {
  let out = 0;
  for (const x of xs) if (x > out) out = x;
  return out;
}
