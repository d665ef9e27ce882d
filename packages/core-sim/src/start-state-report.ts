// What a replay of a trace recorded mid-run started from: the rebuilt start state as recorded, and
// the policy's own state just before the trace's first event, after adopting it (the simulator) or
// materializing it (start-state-prologue.ts, every live replay). The statistics of such a replay
// count from the policy's start, so they include the materialization's allocations: this says how
// many, and what the policy held when the trace began.
import type { SegmentState } from "@lakebed/traces";

/** A start state's size: live blocks are allocated or pending free, cached ones inactive. */
export interface StateCounts {
  segments: number;
  reservedBytes: number;
  liveBlocks: number;
  liveBytes: number;
  cachedBlocks: number;
  cachedBytes: number;
}

export interface StartStateReport {
  /**
   * adopted: the policy took the rebuilt state without a device call (the simulator's default);
   * materialized: the policy allocated it through its device before the trace's first event (live
   * replays, and simulated ones that ask for it), and every statistic, peak and device call count
   * includes those allocations.
   */
  method: "adopted" | "materialized";
  /** the state rebuilt from the trace (traces' initial-state.ts) */
  recorded: StateCounts;
  /** the policy's segments and blocks before the trace's first event */
  atStart: StateCounts;
  /** events of the materialization (allocations and frees) replayed before the trace's first; 0 when adopted */
  materializingEvents: number;
  /**
   * recorded segments the policy holds with the same pool, stream, size and blocks (sizes and
   * states, in order) at the trace's start; equal to recorded.segments when the layout was rebuilt
   * exactly (addresses aside: a live device chooses its own)
   */
  segmentsRebuilt: number;
}

export function stateCounts(segments: readonly SegmentState[]): StateCounts {
  const counts: StateCounts = { segments: segments.length, reservedBytes: 0, liveBlocks: 0, liveBytes: 0, cachedBlocks: 0, cachedBytes: 0 };
  for (const s of segments) {
    counts.reservedBytes += s.totalSize;
    for (const b of s.blocks) {
      if (b.state === "inactive") {
        counts.cachedBlocks++;
        counts.cachedBytes += b.size;
      } else {
        counts.liveBlocks++;
        counts.liveBytes += b.size;
      }
    }
  }
  return counts;
}

/** A segment's shape, addresses left out: what two replays of one start state can agree on. */
function shape(s: SegmentState): string {
  return `${s.pool} ${s.stream} ${s.expandable ? "x" : "o"} ${s.totalSize}: ${s.blocks.map((b) => `${b.size}${b.state[0]}`).join(" ")}`;
}

/** How many recorded segments have their twin in `atStart` (each twin counted once). */
export function segmentsRebuilt(recorded: readonly SegmentState[], atStart: readonly SegmentState[]): number {
  const left = new Map<string, number>();
  for (const s of atStart) left.set(shape(s), (left.get(shape(s)) ?? 0) + 1);
  let matched = 0;
  for (const s of recorded) {
    const n = left.get(shape(s)) ?? 0;
    if (n > 0) {
      matched++;
      left.set(shape(s), n - 1);
    }
  }
  return matched;
}
