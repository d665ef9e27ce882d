// Comparing two device-call sequences (the simulator's and a live driver's): where they first
// differ, said in one line a person can act on.
import { DEVICE_CALL_NAMES } from "@lakebed/core-sim";
import type { CallSequence } from "./call-recorder.js";

export interface CallDivergence {
  /** index of the first call that differs (or the shorter length) */
  index: number;
  expected: string;
  actual: string;
}

function describe(seq: CallSequence, i: number): string {
  return i < seq.kinds.length ? `${DEVICE_CALL_NAMES[seq.kinds[i]]}(${seq.bytes[i]} bytes)` : "(no more calls)";
}

/** null when both sequences are the same calls with the same sizes, in the same order. */
export function firstDivergence(expected: CallSequence, actual: CallSequence): CallDivergence | null {
  const n = Math.max(expected.kinds.length, actual.kinds.length);
  for (let i = 0; i < n; i++) {
    if (
      i >= expected.kinds.length ||
      i >= actual.kinds.length ||
      expected.kinds[i] !== actual.kinds[i] ||
      expected.bytes[i] !== actual.bytes[i]
    ) {
      return { index: i, expected: describe(expected, i), actual: describe(actual, i) };
    }
  }
  return null;
}
