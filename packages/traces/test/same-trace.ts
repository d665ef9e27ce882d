/**
 * Comparing two decodes of one input (two decoders, or one input read in windows and whole): the
 * same trace, column by column, or the same error.
 */
import { expect } from "vitest";
import type { Trace } from "@lakebed/traces";

/** The outcome of one decode: the trace, or the error's message. */
export function decodeOutcome(decode: () => Trace): { trace?: Trace; error?: string } {
  try {
    return { trace: decode() };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Column by column, as bytes (NaN times included), then everything else. */
export function expectSameTrace(a: Trace, b: Trace): void {
  expect(a.devices.length).toBe(b.devices.length);
  a.devices.forEach((da, d) => {
    const db = b.devices[d];
    for (const name of ["action", "addr", "size", "stream", "timeUs", "blockId"] as const) {
      const x = da.events[name];
      const y = db.events[name];
      expect(Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength)), `device ${da.device} column ${name}`).toBe(true);
    }
    expect({ ...da, events: da.events.length }).toEqual({ ...db, events: db.events.length });
  });
  expect({ ...a, devices: [] }).toEqual({ ...b, devices: [] });
}
