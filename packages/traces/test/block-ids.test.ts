import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Action, AddressTable, numberEvents, numberEventsWasm, readTrace, type EventColumns } from "@lakebed/traces";
import { haveShared, shared } from "./fixtures.js";

/** Block numbering in WebAssembly gives what the JavaScript pass gives: ids, first misfit, live blocks. */

type Events = Omit<EventColumns, "blockId">;

function compare(events: Events, initialLive: [number, number][]): void {
  const live = new AddressTable();
  for (const [addr, id] of initialLive) live.set(addr, id);
  const blockId = new Int32Array(events.length);
  const bad = numberEvents(events, blockId, live, initialLive.length);
  const wasm = numberEventsWasm(events, initialLive);
  expect(wasm).not.toBeNull();
  expect(wasm!.bad).toBe(bad);
  if (bad >= 0) {
    expect(Buffer.from(wasm!.blockId.buffer, wasm!.blockId.byteOffset, bad * 4).equals(Buffer.from(blockId.buffer, 0, bad * 4))).toBe(true);
    return;
  }
  expect(Buffer.from(wasm!.blockId.buffer, wasm!.blockId.byteOffset, wasm!.blockId.byteLength).equals(Buffer.from(blockId.buffer))).toBe(true);
  expect(wasm!.live.size).toBe(live.size);
  const differing = [...events.addr, ...initialLive.map(([addr]) => addr)].filter((addr) => wasm!.live.get(addr) !== live.get(addr));
  expect(differing).toEqual([]);
}

const recorded = fileURLToPath(new URL("../../../test/fixtures/recorded/", import.meta.url));
const files = haveShared
  ? [shared, join(shared, "public"), recorded].flatMap((dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => /\.pickle(\.gz)?$/.test(f)).map((f) => join(dir, f)) : []))
  : [];

describe("block numbering in WebAssembly", () => {
  it.skipIf(files.length === 0).each(files)("numbers %s as the JavaScript pass does", async (file) => {
    let trace;
    try {
      trace = await readTrace(file);
    } catch {
      return; // a trace that cannot be read (the legacy one) has no events to number
    }
    for (const d of trace.devices) {
      const initialLive: [number, number][] = [];
      for (const seg of d.initialState) for (const b of seg.blocks) if (b.state !== "inactive") initialLive.push([b.address, initialLive.length]);
      compare(d.events, initialLive);
      compare(d.events, []);
    }
  });

  it("numbers generated event sequences as the JavaScript pass does, misfits included", () => {
    const event = fc.tuple(fc.constantFrom(Action.Alloc, Action.FreeRequested, Action.FreeCompleted, Action.SegmentAlloc, Action.Oom), fc.integer({ min: 0, max: 40 }));
    fc.assert(
      fc.property(fc.array(event, { maxLength: 3000 }), fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 10 }), (list, initial) => {
        const n = list.length;
        const events: Events = {
          length: n,
          action: Uint8Array.from(list.map(([a]) => a)),
          addr: Float64Array.from(list.map(([, k]) => k * 512 + 2 ** 40)),
          size: new Float64Array(n),
          stream: new Uint32Array(n),
          timeUs: new Float64Array(n),
        };
        compare(events, initial.map((k, id) => [k * 512 + 2 ** 40, id]));
      }),
      { numRuns: 300 },
    );
  });

  it("grows its table past thousands of live blocks", () => {
    const n = 50_000;
    const events: Events = { length: n, action: new Uint8Array(n).fill(Action.Alloc), addr: Float64Array.from({ length: n }, (_, i) => i * 512), size: new Float64Array(n), stream: new Uint32Array(n), timeUs: new Float64Array(n) };
    compare(events, []);
  });
});
