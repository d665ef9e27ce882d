/**
 * numberEvents (block-ids.ts) in WebAssembly (assembly/block-ids.ts): the same forward pass, the same
 * answer, at a fraction of the cost of the first, unoptimized run of the JavaScript loop that every
 * `lakebed` command pays. test/block-ids.test.ts runs both on every real trace and on generated
 * sequences. Null where the module is missing or cannot take the columns; callers then run the
 * JavaScript pass.
 */
import { AddressTable } from "./address-table.js";
import type { EventsWithoutIds } from "./block-ids.js";
import { wasmModule } from "./wasm-module.js";

interface BlockIdExports {
  memory: WebAssembly.Memory;
  reset(heapStart: number, firstId: number): void;
  number(actionPtr: number, addrPtr: number, idPtr: number, from: number, to: number): number;
  addLive(addr: number, id: number): void;
  liveCount(): number;
  writeLive(out: number): void;
}

const PAGE_BYTES = 65536;
/** events per call (see assembly/block-ids.ts number) */
const SLICE_EVENTS = 8192;
/** wasm32 memory ends at 4 GiB; the columns and the table must fit below it */
const MAX_EVENTS = 2 ** 28;

export interface NumberedEvents {
  blockId: Int32Array;
  /** the first event that does not fit, or -1 (see numberEvents) */
  bad: number;
  /** the blocks live at the end (only when bad is -1) */
  live: AddressTable;
}

/**
 * Numbers `events` with the blocks of `initialLive` (address, id; ids 0..k-1) live at the start,
 * the next id being `initialLive.length`.
 */
export function numberEventsWasm(events: EventsWithoutIds, initialLive: ReadonlyArray<readonly [number, number]> = []): NumberedEvents | null {
  const module = wasmModule("block-ids.wasm");
  const n = events.length;
  if (module === null || n > MAX_EVENTS) return null;
  try {
    const wasm = new WebAssembly.Instance(module, {}).exports as unknown as BlockIdExports;
    const base = wasm.memory.buffer.byteLength;
    const addrPtr = base;
    const idPtr = addrPtr + n * 8;
    const actionPtr = idPtr + n * 4;
    const heapStart = actionPtr + n;
    wasm.memory.grow(Math.ceil((heapStart - base) / PAGE_BYTES) + 1);
    new Float64Array(wasm.memory.buffer, addrPtr, n).set(events.addr.subarray(0, n));
    new Uint8Array(wasm.memory.buffer, actionPtr, n).set(events.action.subarray(0, n));
    wasm.reset(heapStart, initialLive.length);
    for (const [addr, id] of initialLive) wasm.addLive(addr, id);
    let bad = -1;
    for (let from = 0; from < n && bad < 0; from += SLICE_EVENTS) bad = wasm.number(actionPtr, addrPtr, idPtr, from, Math.min(n, from + SLICE_EVENTS));
    const blockId = new Int32Array(wasm.memory.buffer, idPtr, n).slice();
    const live = new AddressTable();
    if (bad < 0) {
      const count = wasm.liveCount();
      const out = wasm.memory.buffer.byteLength;
      wasm.memory.grow(Math.ceil((count * 16) / PAGE_BYTES) + 1);
      wasm.writeLive(out);
      const pairs = new Float64Array(wasm.memory.buffer, out, count * 2);
      for (let k = 0; k < count; k++) live.set(pairs[2 * k], pairs[2 * k + 1]);
    }
    return { blockId, bad, live };
  } catch {
    return null; // no memory for it: the JavaScript pass runs instead
  }
}
