/**
 * A data-only pickle decoder.
 *
 * Safety: it executes only the opcodes listed in pickle-opcodes.ts `Op` (plain data and the memo).
 * Anything else (GLOBAL, REDUCE, BUILD, PERSID, ...) is a TraceError naming the opcode and its byte
 * offset; nothing a file names is ever looked up, imported or called. Every read is bounds-checked
 * against the end of the input, every length and memo index against what the input can hold, so bad
 * input ends in a TraceError, never in a crash, a hang or an allocation larger than the input.
 * The decoder is a loop over a byte array with an explicit value stack: no recursion, so nesting
 * depth cannot overflow the JavaScript stack (it is still capped, see MAX_MARK_DEPTH).
 *
 * Values it produces:
 *   dict -> object with a null prototype (keys are strings; int keys become decimal strings)
 *   list, tuple, set, frozenset -> Array
 *   str -> string;  bytes -> Uint8Array (a copy);  int -> number when exact (|n| <= 2^53 - 1), else bigint
 *   float -> number;  True/False -> boolean;  None -> null
 *
 * Streaming: a caller passes a `PickleShaper`, asked at every new dict or list what to build. It can
 * return a ContainerSink (items are handed to the sink instead of being stored: this is how trace
 * entries go straight into typed columns), SKIPPED (items are dropped: used for stack frames), or
 * undefined for an ordinary container. Strings are decoded and memoized even inside skipped
 * containers, because memo entries are shared across the whole file.
 */
import { TraceError } from "./trace-error.js";
import { Op, describeRefusedOpcode } from "./pickle-opcodes.js";

export type ContainerKind = "dict" | "list";

/** Receives a container's items instead of a JS object; see PickleShaper. */
export abstract class ContainerSink {
  /** items[from], items[from+1] are the first key and value; `to` is exclusive; (to - from) is even */
  abstract setItems(items: unknown[], from: number, to: number): void;
  abstract appendItems(items: unknown[], from: number, to: number): void;
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

export interface DecodeOptions {
  /** names the input in error messages */
  file: string;
  shaper?: PickleShaper;
  /** called now and then with the byte offset reached and the input length */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

/** Nesting beyond this many open MARKs is bad input (real snapshots nest about 6 deep). */
const MAX_MARK_DEPTH = 10_000;
/** LONG4 integers longer than this are bad input (real snapshots use LONG1 with at most 8 bytes). */
const MAX_LONG_BYTES = 1024;
/** Short ASCII strings are interned through a small cache: a snapshot repeats "N/A" once per event. */
const STRING_CACHE_MAX_LENGTH = 32;
const STRING_CACHE_SLOTS = 4096;
const PROGRESS_EVERY_OPS = 1 << 20;
const TWO_POW_32 = 4294967296;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes one pickle from `bytes` (bytes after its STOP are ignored, as pickle.loads does). */
export function decodePickle(bytes: Uint8Array, options: DecodeOptions): unknown {
  const { file, shaper, onProgress } = options;
  const buf = bytes;
  const end = buf.length;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo: unknown[] = [];
  const stringCache: (string | undefined)[] = new Array(STRING_CACHE_SLOTS).fill(undefined);
  let pos = 0;
  let opStart = 0;
  let opCount = 0;

  const fail = (detail: string, at = opStart): never => {
    throw new TraceError(file, detail, { byteOffset: at });
  };
  const truncated = (): never => fail(`truncated pickle: input ends inside the opcode at byte ${opStart}`, end);
  const need = (n: number): void => {
    if (pos + n > end) truncated();
  };
  const underflow = (what: string): never => fail(`malformed pickle: ${what} with too few values on the stack`);
  const popMark = (what: string): number => {
    if (marks.length === 0) fail(`malformed pickle: ${what} without a MARK`);
    return marks.pop()!;
  };
  const top = (what: string): unknown => {
    if (stack.length === 0 || marks.length > 0 && marks[marks.length - 1] === stack.length) underflow(what);
    return stack[stack.length - 1];
  };

  const readString = (n: number): string => {
    if (n > end - pos) fail(`malformed pickle: string of ${n} bytes runs past the end of the input (${end - pos} bytes left)`);
    const start = pos;
    pos += n;
    if (n <= STRING_CACHE_MAX_LENGTH) {
      let hash = n;
      let ascii = true;
      for (let i = start; i < start + n; i++) {
        const b = buf[i];
        if (b >= 0x80) {
          ascii = false;
          break;
        }
        hash = (Math.imul(hash, 31) + b) | 0;
      }
      if (ascii) {
        const slot = hash & (STRING_CACHE_SLOTS - 1);
        const cached = stringCache[slot];
        if (cached !== undefined && cached.length === n) {
          let same = true;
          for (let i = 0; i < n; i++) {
            if (cached.charCodeAt(i) !== buf[start + i]) {
              same = false;
              break;
            }
          }
          if (same) return cached;
        }
        const s = String.fromCharCode.apply(null, buf.subarray(start, start + n) as unknown as number[]);
        stringCache[slot] = s;
        return s;
      }
    }
    try {
      return utf8.decode(buf.subarray(start, start + n));
    } catch {
      return fail("malformed pickle: string is not valid UTF-8");
    }
  };

  const readBytes = (n: number): Uint8Array => {
    if (n > end - pos) fail(`malformed pickle: bytes of length ${n} run past the end of the input`);
    const out = buf.slice(pos, pos + n);
    pos += n;
    return out;
  };

  /** little-endian two's complement integer of n bytes at pos */
  const readLong = (n: number): number | bigint => {
    if (n > end - pos) fail(`malformed pickle: integer of ${n} bytes runs past the end of the input`);
    const start = pos;
    pos += n;
    if (n === 0) return 0;
    const negative = buf[start + n - 1] >= 0x80;
    if (!negative && n <= 8) {
      let value = 0;
      let scale = 1;
      for (let i = start; i < start + n; i++) {
        value += buf[i] * scale;
        scale *= 256;
      }
      // every partial sum is an integer no larger than the total, so a total within the safe range is exact
      if (value <= Number.MAX_SAFE_INTEGER) return value;
    }
    let big = 0n;
    for (let i = start + n - 1; i >= start; i--) big = (big << 8n) | BigInt(buf[i]);
    if (negative) big -= 1n << BigInt(8 * n);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  };

  const openContainer = (kind: ContainerKind): unknown => {
    const owner = stack.length > 0 ? stack[stack.length - 1] : undefined;
    if (owner === SKIPPED) return SKIPPED;
    const shaped = shaper === undefined ? undefined : shaper.open(kind, owner);
    if (shaped !== undefined) return shaped;
    return kind === "dict" ? Object.create(null) : [];
  };

  const setItems = (target: unknown, from: number, to: number): void => {
    if (target instanceof ContainerSink) {
      target.setItems(stack, from, to);
      return;
    }
    if (typeof target !== "object" || target === null || Object.getPrototypeOf(target) !== null) {
      fail("malformed pickle: SETITEM(S) on a value that is not a dict");
    }
    const dict = target as Record<string, unknown>;
    for (let i = from; i < to; i += 2) {
      const key = stack[i];
      if (typeof key === "string") dict[key] = stack[i + 1];
      else if (typeof key === "number" || typeof key === "bigint") dict[String(key)] = stack[i + 1];
      else fail(`malformed snapshot: dict key of type ${key === null ? "None" : Array.isArray(key) ? "tuple" : typeof key}`);
    }
  };

  const appendItems = (target: unknown, from: number, to: number): void => {
    if (target instanceof ContainerSink) {
      target.appendItems(stack, from, to);
      return;
    }
    if (!Array.isArray(target)) fail("malformed pickle: APPEND(S) on a value that is not a list");
    const list = target as unknown[];
    for (let i = from; i < to; i++) list.push(stack[i]);
  };

  const itemsSinceMark = (what: string): unknown[] => {
    const m = popMark(what);
    return stack.splice(m);
  };

  for (;;) {
    if (pos >= end) truncated();
    opStart = pos;
    const op = buf[pos++];
    if ((++opCount & (PROGRESS_EVERY_OPS - 1)) === 0 && onProgress !== undefined) onProgress(pos, end);
    switch (op) {
      case Op.PROTO: {
        need(1);
        const version = buf[pos++];
        if (version < 2 || version > 5) fail(`unsupported pickle protocol ${version} (2 to 5 are accepted)`);
        break;
      }
      case Op.FRAME: {
        need(8);
        const frameLength = view.getUint32(pos, true) + view.getUint32(pos + 4, true) * TWO_POW_32;
        pos += 8;
        if (frameLength > end - pos) fail(`truncated pickle: a frame of ${frameLength} bytes runs past the end of the input (${end - pos} bytes left)`);
        break;
      }
      case Op.STOP: {
        if (stack.length === 0) underflow("STOP");
        if (onProgress !== undefined) onProgress(end, end);
        return stack[stack.length - 1];
      }
      case Op.MARK:
        if (marks.length >= MAX_MARK_DEPTH) fail(`malformed pickle: nesting deeper than ${MAX_MARK_DEPTH} levels`);
        marks.push(stack.length);
        break;
      case Op.EMPTY_DICT:
        stack.push(openContainer("dict"));
        break;
      case Op.EMPTY_LIST:
        stack.push(openContainer("list"));
        break;
      case Op.EMPTY_TUPLE:
      case Op.EMPTY_SET:
        stack.push([]);
        break;
      case Op.SETITEM: {
        const n = stack.length;
        if (n < 3 || (marks.length > 0 && marks[marks.length - 1] > n - 3)) underflow("SETITEM");
        setItems(stack[n - 3], n - 2, n);
        stack.length = n - 2;
        break;
      }
      case Op.SETITEMS: {
        const m = popMark("SETITEMS");
        if (m < 1) underflow("SETITEMS");
        if ((stack.length - m) & 1) fail("malformed pickle: SETITEMS with an odd number of values");
        setItems(stack[m - 1], m, stack.length);
        stack.length = m;
        break;
      }
      case Op.APPEND: {
        const n = stack.length;
        if (n < 2 || (marks.length > 0 && marks[marks.length - 1] > n - 2)) underflow("APPEND");
        appendItems(stack[n - 2], n - 1, n);
        stack.length = n - 1;
        break;
      }
      case Op.APPENDS:
      case Op.ADDITEMS: {
        const m = popMark("APPENDS");
        if (m < 1) underflow("APPENDS");
        appendItems(stack[m - 1], m, stack.length);
        stack.length = m;
        break;
      }
      case Op.TUPLE:
      case Op.FROZENSET:
      case Op.LIST:
        stack.push(itemsSinceMark("TUPLE"));
        break;
      case Op.DICT: {
        const items = itemsSinceMark("DICT");
        if (items.length & 1) fail("malformed pickle: DICT with an odd number of values");
        const dict = Object.create(null);
        const at = stack.length;
        stack.push(dict);
        for (const item of items) stack.push(item);
        setItems(dict, at + 1, stack.length);
        stack.length = at + 1;
        break;
      }
      case Op.TUPLE1:
      case Op.TUPLE2:
      case Op.TUPLE3: {
        const k = op - Op.TUPLE1 + 1;
        const n = stack.length;
        if (n < k || (marks.length > 0 && marks[marks.length - 1] > n - k)) underflow("TUPLE1/2/3");
        stack.push(stack.splice(n - k));
        break;
      }
      case Op.POP:
        if (marks.length > 0 && marks[marks.length - 1] === stack.length) marks.pop();
        else if (stack.length === 0) underflow("POP");
        else stack.pop();
        break;
      case Op.POP_MARK:
        stack.length = popMark("POP_MARK");
        break;
      case Op.DUP:
        stack.push(top("DUP"));
        break;
      case Op.SHORT_BINUNICODE: {
        need(1);
        const n = buf[pos++];
        stack.push(readString(n));
        break;
      }
      case Op.BINUNICODE: {
        need(4);
        const n = view.getUint32(pos, true);
        pos += 4;
        stack.push(readString(n));
        break;
      }
      case Op.BINUNICODE8: {
        need(8);
        const n = view.getUint32(pos, true) + view.getUint32(pos + 4, true) * TWO_POW_32;
        pos += 8;
        stack.push(readString(n));
        break;
      }
      case Op.SHORT_BINBYTES: {
        need(1);
        const n = buf[pos++];
        stack.push(readBytes(n));
        break;
      }
      case Op.BINBYTES: {
        need(4);
        const n = view.getUint32(pos, true);
        pos += 4;
        stack.push(readBytes(n));
        break;
      }
      case Op.BINBYTES8: {
        need(8);
        const n = view.getUint32(pos, true) + view.getUint32(pos + 4, true) * TWO_POW_32;
        pos += 8;
        stack.push(readBytes(n));
        break;
      }
      case Op.BININT1:
        need(1);
        stack.push(buf[pos++]);
        break;
      case Op.BININT2:
        need(2);
        stack.push(buf[pos] | (buf[pos + 1] << 8));
        pos += 2;
        break;
      case Op.BININT:
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case Op.LONG1: {
        need(1);
        const n = buf[pos++];
        stack.push(readLong(n));
        break;
      }
      case Op.LONG4: {
        need(4);
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0 || n > MAX_LONG_BYTES) fail(`malformed pickle: LONG4 integer of ${n} bytes (at most ${MAX_LONG_BYTES} accepted)`);
        stack.push(readLong(n));
        break;
      }
      case Op.BINFLOAT:
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case Op.NEWTRUE:
        stack.push(true);
        break;
      case Op.NEWFALSE:
        stack.push(false);
        break;
      case Op.NONE:
        stack.push(null);
        break;
      case Op.MEMOIZE:
        memo.push(top("MEMOIZE"));
        break;
      case Op.BINPUT:
      case Op.LONG_BINPUT: {
        let index: number;
        if (op === Op.BINPUT) {
          need(1);
          index = buf[pos++];
        } else {
          need(4);
          index = view.getUint32(pos, true);
          pos += 4;
        }
        // a memo index can never exceed the number of opcodes in the input; refusing larger ones
        // keeps a hostile index from allocating a huge memo
        if (index > end) fail(`malformed pickle: memo index ${index} is larger than the input`);
        const value = top("BINPUT");
        while (memo.length < index) memo.push(undefined);
        memo[index] = value;
        break;
      }
      case Op.BINGET:
      case Op.LONG_BINGET: {
        let index: number;
        if (op === Op.BINGET) {
          need(1);
          index = buf[pos++];
        } else {
          need(4);
          index = view.getUint32(pos, true);
          pos += 4;
        }
        const value = index < memo.length ? memo[index] : undefined;
        if (value === undefined) fail(`malformed pickle: memo index ${index} out of range (memo holds ${memo.length} values)`);
        stack.push(value);
        break;
      }
      default:
        fail(describeRefusedOpcode(op));
    }
  }
}
