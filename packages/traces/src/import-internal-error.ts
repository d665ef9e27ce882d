/**
 * A JavaScript error (a TypeError, a RangeError, ...) that escaped a reader: a bug in lakebed, or a
 * resource the input exhausted that no stated limit caught, never a statement about what is wrong
 * with the input. It still reaches the user as one line naming the file, how far reading got (the
 * stage, and the byte of a pickle), and what to do:
 *
 *   lakebed: t.pickle: byte 52311: internal error while decoding the pickle (TypeError: Cannot read properties of undefined (reading 'x')); please report it, with this file
 *
 * `internal` tells it apart from a refusal of bad input: the fuzzers (test/fuzz) count it as a
 * failure, not as a clean rejection.
 */
import { TraceError } from "./trace-error.js";

const DETAIL_CHARS = 200;

export class ImportInternalError extends TraceError {
  readonly internal = true;

  constructor(file: string, stage: string, cause: unknown, where: { device?: number; byteOffset?: number } = {}) {
    super(file, `internal error while ${stage} (${describeCause(cause)}); please report it, with this file`, where);
  }
}

function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause).split("\n")[0].slice(0, DETAIL_CHARS);
  return `${cause.name}: ${cause.message.split("\n")[0].slice(0, DETAIL_CHARS)}`;
}
