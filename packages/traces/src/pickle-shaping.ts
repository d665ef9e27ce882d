/**
 * How a caller shapes what the pickle decoder builds, so that a large file can be streamed into
 * typed columns instead of materialized: a PickleShaper is asked at each new dict or list, and may
 * answer with a ContainerSink that receives the container's items, or SKIPPED to drop them.
 */

import type { PickleMemo } from "./pickle-memo.js";

export type ContainerKind = "dict" | "list";

/** Receives a container's items instead of a JS object; see PickleShaper. */
export abstract class ContainerSink {
  /** items[from], items[from+1] are the first key and value; `to` is exclusive; (to - from) is even */
  abstract setItems(items: unknown[], from: number, to: number): void;
  abstract appendItems(items: unknown[], from: number, to: number): void;
  /**
   * The fast path for dict sinks (all three or none): items are handed over one pair at a time as
   * soon as both are decoded, without the value stack, and integers without leaving the decoder.
   * keyCode classifies a key once per distinct key (the decoder caches it by memo index):
   *   0    the value is decoded (memo entries must exist) and dropped
   *   > 0  an integer value is stored in row[code]; any other value goes to setOther(code, value)
   *   < 0  every value goes to setOther(code, value)
   * Together they must behave exactly like setItems on the same pairs. At the dict's SETITEMS the
   * fast path calls setItems with no pairs (from === to), where the general loop calls it with the
   * pairs it holds: a sink may keep what setOther finds wrong until then.
   */
  keyCode?(key: string): number;
  row?: Float64Array;
  setOther?(code: number, value: unknown): void;
  /**
   * A hint for list sinks: the items are mostly dicts for the fast path above (trace entries), so
   * the decoder runs the whole list in its fast loop. It changes nothing but speed.
   */
  itemsAreFlatDicts?: boolean;
  /**
   * An optional faster path for list sinks with itemsAreFlatDicts: decodes as many consecutive
   * items as it can, from `pos` (an EMPTY_DICT), exactly as open() and the pair fast path would,
   * pushes each item's value on `stack`, and returns the offset after them (`pos` itself when it
   * took none: the decoder then takes the item at `pos`). It may read and extend `memo`.
   */
  decodeItems?(buf: Uint8Array, pos: number, memo: PickleMemo, stack: unknown[]): number;
}

/** Whether `value` is a dict sink that takes the fast path (keyCode, row and setOther). */
export function takesPairs(value: unknown): value is ContainerSink & Required<Pick<ContainerSink, "keyCode" | "row" | "setOther">> {
  return value instanceof ContainerSink && value.row !== undefined && value.keyCode !== undefined && value.setOther !== undefined;
}

/** The sink for skipped containers: drops everything. */
class DiscardSink extends ContainerSink {
  setItems(): void {}
  appendItems(): void {}
}

/**
 * The value that stands for a skipped container. A container opened directly above a skipped one on
 * the stack is skipped too: it is either inside it, or the next item of a list whose items are being
 * skipped (dict values always have their key string between them and the previous value).
 */
export const SKIPPED: ContainerSink = new DiscardSink();

export interface PickleShaper {
  /**
   * Called for each new dict or list (EMPTY_DICT / EMPTY_LIST) not inside a skipped container.
   * `owner` is the value just beneath it on the stack: the dict key when it is a dict value, the list
   * that will receive it (or the previous item of that list) when it is a list item.
   */
  open(kind: ContainerKind, owner: unknown): ContainerSink | undefined;
}
