/**
 * A data-only pickle decoder.
 *
 * Safety: it executes only the opcodes listed in pickle-opcodes.ts `Op` (plain data and the memo).
 * Anything else (GLOBAL, REDUCE, BUILD, PERSID, ...) is a TraceError naming the opcode and its byte
 * offset; nothing a file names is ever looked up, imported or called. Every read is bounds-checked
 * against the end of the input, every length and memo index against what the input can hold, so bad
 * input ends in a TraceError, never in a crash, a hang or an allocation larger than the input.
 * The decoder is a loop over a byte array with an explicit value stack: no recursion, so nesting
 * depth cannot overflow the JavaScript stack (it is still a stated limit: ImportLimits.depth open MARKs).
 *
 * Values it produces:
 *   dict -> object with a null prototype (keys are strings; int keys become decimal strings)
 *   list, tuple, set, frozenset -> Array
 *   str -> string;  bytes -> Uint8Array (a copy);  int -> number when exact (|n| <= 2^53 - 1), else bigint
 *   float -> number;  True/False -> boolean;  None -> null
 *
 * Streaming: a caller passes a PickleShaper (pickle-shaping.ts), asked at every new dict or list
 * what to build: a sink that takes its items (trace entries go straight into typed columns so),
 * SKIPPED (stack frames), or an ordinary container. Strings are decoded and memoized even inside
 * skipped containers, because memo entries are shared across the whole file.
 */
import { TraceError } from "./trace-error.js";
import { MAX_JS_STRING_LENGTH, StringDecoder, TOO_LONG, readLittleEndianInt } from "./pickle-scalars.js";
import { PickleMemo } from "./pickle-memo.js";
import { FlatDictDecoder } from "./pickle-flat-dict.js";
import { importLimits, limitExceeded, type ImportLimits } from "./import-limits.js";
import { Op, describeRefusedOpcode } from "./pickle-opcodes.js";
import { ContainerSink, SKIPPED, takesPairs, type PickleShaper } from "./pickle-shaping.js";

export interface DecodeOptions {
  /** names the input in error messages */
  file: string;
  shaper?: PickleShaper;
  /** called now and then with the byte offset reached and the input length */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** the stated limits (only depth applies to decoding itself); the defaults where absent */
  limits?: ImportLimits;
}

/** LONG4 integers longer than this are bad input (real snapshots use LONG1 with at most 8 bytes). */
const MAX_LONG_BYTES = 1024;
const PROGRESS_EVERY_OPS = 1 << 20;
const TWO_POW_32 = 4294967296;

/**
 * Decodes one pickle from `bytes` (bytes after its STOP are ignored, as pickle.loads does): the
 * whole input as one window of a PickleDecoder.
 */
export function decodePickle(bytes: Uint8Array, options: DecodeOptions): unknown {
  const decoder = new PickleDecoder(options);
  const result = decoder.decodeWindow(bytes, 0, true, bytes.length, 0, options.onProgress);
  if (result === SUSPENDED) throw new Error("a final window cannot suspend");
  return result;
}

/** What decodeWindow answers when the window ends before the pickle does (see PickleDecoder). */
export const SUSPENDED: unique symbol = Symbol("suspended");

/**
 * A pickle decoded window by window, for input read as a stream (pickle-stream.ts). The state
 * between windows is the value stack, the MARKs and the memo (whose values never point into the
 * input: strings are copied, bytes sliced); positions are the current window's.
 *
 * A window that is not the last may end anywhere, even inside an opcode. Every opcode makes all its
 * bounds checks before it changes any state, so where one runs past a window's end, decodeWindow
 * returns SUSPENDED with `resumeAt` (the opcode's start, in the window) and `needEnd` (the pickle
 * offset the next window must reach, or the input end), and the next window begins at `resumeAt`
 * and decodes the opcode again (the flat-dict fast path stops only between opcodes, leaving the
 * state as the general loop would). Where the same check fails in the last window, it is the error the
 * whole input would give, with the same message and offsets: a truncated pickle is reported alike
 * however it was read.
 */
export class PickleDecoder {
  readonly stack: unknown[] = [];
  readonly marks: number[] = [];
  readonly memo = new PickleMemo();
  readonly strings = new StringDecoder();
  readonly flat: FlatDictDecoder;
  readonly limits: ImportLimits;
  opCount = 0;
  /** the pickle offset of the last opcode begun (the truncation message names it) */
  lastOpStart = 0;
  /** after SUSPENDED: where in the window the next one starts, and the pickle offset it must reach */
  resumeAt = 0;
  needEnd = 0;
  /** the window decodeWindow is in (its arguments), for the paths that suspend or refuse */
  private window = { base: 0, end: 0, final: true, total: -1 };

  constructor(readonly options: DecodeOptions) {
    this.limits = options.limits ?? importLimits();
    this.flat = new FlatDictDecoder(this.memo, this.strings, this.limits.depth);
  }

  /** Where the next window begins (window offset `at`) and what it must reach; the state as it is. */
  private suspend(at: number, needEnd: number, lastOpStart: number, opCount: number): typeof SUSPENDED {
    this.resumeAt = at;
    this.needEnd = needEnd;
    this.lastOpStart = lastOpStart;
    this.opCount = opCount;
    return SUSPENDED;
  }

  /**
   * The opcode begun at window offset `opStart` needs the input up to pickle offset `needEnd`, past
   * this window's end: SUSPENDED where a next window follows (it decodes the opcode again), else the
   * input is truncated and this throws.
   */
  private operandPastWindow(opStart: number, needEnd: number, opCount: number): typeof SUSPENDED {
    const { base, end, final } = this.window;
    if (!final) return this.suspend(opStart, needEnd, base + opStart, opCount);
    throw truncated(this.options.file, base + opStart, base + end);
  }

  /**
   * The opcode begun at window offset `opStart` has `n` bytes of data from window offset `pos`, past
   * this window's end: SUSPENDED where the input may still hold them (a next window follows and the
   * pickle's length is unknown or long enough), else the error `describe` words from the bytes left.
   */
  private dataPastWindow(pos: number, n: number, opStart: number, opCount: number, describe: (left: number) => string): typeof SUSPENDED {
    const { base, end, final, total } = this.window;
    const left = (final ? base + end : total) - base - pos;
    if (!final && (total < 0 || n <= left)) return this.suspend(opStart, base + pos + n, base + opStart, opCount);
    throw bad(this.options.file, describe(left), base + opStart);
  }

  /**
   * Decodes `buf`, the pickle from offset `base` on, from window offset `start`. `final`: the input
   * ends with this window. `total`: the pickle's length where known before its end is read (a plain
   * file's size; else -1), which bounds a frame or a memo index without reading that far. Returns
   * the pickle's value, or SUSPENDED.
   *
   * Written for V8: one function whose position and stack are locals (no closure captures them, so
   * they live in registers), bounds checks inline, opcodes an inlined enum (the switch is a jump
   * table), and dicts whose sink takes pairs directly (trace entries) handed to FlatDictDecoder, a
   * small function that V8 optimizes on its own.
   */
  decodeWindow(
    buf: Uint8Array,
    base: number,
    final: boolean,
    total: number,
    start: number,
    onProgress: ((bytesDone: number, bytesTotal: number) => void) | undefined,
  ): unknown {
    const { file, shaper } = this.options;
    const { limits, stack, marks, memo, strings, flat } = this;
    const maxDepth = limits.depth;
    const end = buf.length;
    const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    flat.setWindow(buf, onProgress);
    this.window = { base, end, final, total };
    let pos = start;
    let opStart = this.lastOpStart - base;
    let opCount = this.opCount;

    for (;;) {
      if (pos >= end) {
        if (!final) return this.suspend(pos, base + pos + 1, base + opStart, opCount);
        throw truncated(file, base + opStart, base + end);
      }
      opStart = pos;
      const op = buf[pos++];
      if ((++opCount & (PROGRESS_EVERY_OPS - 1)) === 0 && onProgress !== undefined) onProgress(pos, end);
      switch (op) {
        case Op.PROTO: {
          if (pos + 1 > end) return this.operandPastWindow(opStart, base + pos + 1, opCount);
          const version = buf[pos++];
          if (version < 2 || version > 5) throw bad(file, `unsupported pickle protocol ${version} (2 to 5 are accepted)`, base + opStart);
          break;
        }
        case Op.FRAME: {
          if (pos + 8 > end) return this.operandPastWindow(opStart, base + pos + 8, opCount);
          const frameLength = readLength(buf, view, pos, 8);
          pos += 8;
          if (frameLength > end - pos) {
            // frames are advisory: a frame that runs past this window is checked against the end of
            // the input, where it is known, and read on into the next window
            if (!final && total < 0) return this.suspend(opStart, base + pos + frameLength, base + opStart, opCount);
            const left = (final ? base + end : total) - base - pos;
            if (frameLength > left) throw bad(file, `truncated pickle: a frame of ${frameLength} bytes runs past the end of the input (${left} bytes left)`, base + opStart);
          }
          break;
        }
        case Op.STOP:
          if (stack.length === 0) throw underflow(file, "STOP", base + opStart);
          if (onProgress !== undefined) onProgress(end, end);
          this.opCount = opCount;
          return stack[stack.length - 1];
        case Op.MARK:
          if (marks.length >= maxDepth) throw limitExceeded(file, "depth", `${maxDepth + 1} or more`, limits, { byteOffset: base + opStart });
          marks.push(stack.length);
          break;
        case Op.EMPTY_DICT: {
          // the next item of a list of flat dicts whose fast loop stopped at an opcode this loop took
          // (a FRAME inside an entry, say): back into the fast loop, which does what this loop would
          const listAt = marks.length > 0 ? marks[marks.length - 1] - 1 : -1;
          const list = listAt >= 0 ? stack[listAt] : undefined;
          if (shaper !== undefined && list instanceof ContainerSink && list.itemsAreFlatDicts === true) {
            const next = flat.decodeList(opStart, list, stack, marks, shaper);
            if (next !== opStart) {
              pos = next;
              break;
            }
          }
          const owner = stack.length > 0 ? stack[stack.length - 1] : undefined;
          const dict = owner === SKIPPED ? SKIPPED : (shaper?.open("dict", owner) ?? Object.create(null));
          stack.push(dict);
          if (takesPairs(dict)) pos = flat.decodeDict(pos, dict, stack, marks);
          break;
        }
        case Op.EMPTY_LIST: {
          const owner = stack.length > 0 ? stack[stack.length - 1] : undefined;
          const list = owner === SKIPPED ? SKIPPED : (shaper?.open("list", owner) ?? []);
          stack.push(list);
          if (shaper !== undefined && list instanceof ContainerSink && list.itemsAreFlatDicts === true) pos = flat.decodeList(pos, list, stack, marks, shaper);
          break;
        }
        case Op.EMPTY_TUPLE:
        case Op.EMPTY_SET:
          stack.push([]);
          break;
        case Op.SETITEM: {
          const n = stack.length;
          if (n < 3 || (marks.length > 0 && marks[marks.length - 1] > n - 3)) throw underflow(file, "SETITEM", base + opStart);
          setItems(stack, stack[n - 3], n - 2, n, file, base + opStart);
          stack.length = n - 2;
          break;
        }
        case Op.SETITEMS: {
          if (marks.length === 0) throw noMark(file, "SETITEMS", base + opStart);
          const m = marks.pop()!;
          if (m < 1) throw underflow(file, "SETITEMS", base + opStart);
          if ((stack.length - m) & 1) throw bad(file, "malformed pickle: SETITEMS with an odd number of values", base + opStart);
          setItems(stack, stack[m - 1], m, stack.length, file, base + opStart);
          stack.length = m;
          break;
        }
        case Op.APPEND: {
          const n = stack.length;
          if (n < 2 || (marks.length > 0 && marks[marks.length - 1] > n - 2)) throw underflow(file, "APPEND", base + opStart);
          appendItems(stack, stack[n - 2], n - 1, n, file, base + opStart);
          stack.length = n - 1;
          break;
        }
        case Op.APPENDS:
        case Op.ADDITEMS: {
          if (marks.length === 0) throw noMark(file, "APPENDS", base + opStart);
          const m = marks.pop()!;
          if (m < 1) throw underflow(file, "APPENDS", base + opStart);
          appendItems(stack, stack[m - 1], m, stack.length, file, base + opStart);
          stack.length = m;
          break;
        }
        case Op.TUPLE:
        case Op.FROZENSET:
        case Op.LIST:
          if (marks.length === 0) throw noMark(file, "TUPLE", base + opStart);
          stack.push(stack.splice(marks.pop()!));
          break;
        case Op.DICT: {
          if (marks.length === 0) throw noMark(file, "DICT", base + opStart);
          const m = marks.pop()!;
          if ((stack.length - m) & 1) throw bad(file, "malformed pickle: DICT with an odd number of values", base + opStart);
          const dict = Object.create(null);
          setItems(stack, dict, m, stack.length, file, base + opStart);
          stack.length = m;
          stack.push(dict);
          break;
        }
        case Op.TUPLE1:
        case Op.TUPLE2:
        case Op.TUPLE3: {
          const k = op - Op.TUPLE1 + 1;
          const n = stack.length;
          if (n < k || (marks.length > 0 && marks[marks.length - 1] > n - k)) throw underflow(file, "TUPLE1/2/3", base + opStart);
          stack.push(stack.splice(n - k));
          break;
        }
        case Op.POP:
          if (marks.length > 0 && marks[marks.length - 1] === stack.length) marks.pop();
          else if (stack.length === 0) throw underflow(file, "POP", base + opStart);
          else stack.pop();
          break;
        case Op.POP_MARK:
          if (marks.length === 0) throw noMark(file, "POP_MARK", base + opStart);
          stack.length = marks.pop()!;
          break;
        case Op.DUP:
          if (stack.length === 0 || (marks.length > 0 && marks[marks.length - 1] === stack.length)) throw underflow(file, "DUP", base + opStart);
          stack.push(stack[stack.length - 1]);
          break;
        case Op.SHORT_BINUNICODE:
        case Op.BINUNICODE:
        case Op.BINUNICODE8: {
          const width = op === Op.SHORT_BINUNICODE ? 1 : op === Op.BINUNICODE ? 4 : 8;
          if (pos + width > end) return this.operandPastWindow(opStart, base + pos + width, opCount);
          const n = readLength(buf, view, pos, width);
          pos += width;
          if (n > end - pos) return this.dataPastWindow(pos, n, opStart, opCount, (left) => `malformed pickle: a string of ${n} bytes runs past the end of the input (${left} bytes left)`);
          const s = strings.decodeAny(buf, pos, n);
          if (s === undefined) throw bad(file, "malformed pickle: string is not valid UTF-8", base + opStart);
          if (s === TOO_LONG) throw bad(file, `a string of ${n} bytes is longer than the longest string JavaScript can hold (${MAX_JS_STRING_LENGTH} UTF-16 code units); no snapshot field needs one that long`, base + opStart);
          pos += n;
          stack.push(s);
          break;
        }
        case Op.SHORT_BINBYTES:
        case Op.BINBYTES:
        case Op.BINBYTES8: {
          const width = op === Op.SHORT_BINBYTES ? 1 : op === Op.BINBYTES ? 4 : 8;
          if (pos + width > end) return this.operandPastWindow(opStart, base + pos + width, opCount);
          const n = readLength(buf, view, pos, width);
          pos += width;
          if (n > end - pos) return this.dataPastWindow(pos, n, opStart, opCount, (left) => `malformed pickle: bytes of length ${n} run past the end of the input (${left} bytes left)`);
          stack.push(buf.slice(pos, pos + n));
          pos += n;
          break;
        }
        case Op.BININT1:
          if (pos + 1 > end) return this.operandPastWindow(opStart, base + pos + 1, opCount);
          stack.push(buf[pos++]);
          break;
        case Op.BININT2:
          if (pos + 2 > end) return this.operandPastWindow(opStart, base + pos + 2, opCount);
          stack.push(buf[pos] | (buf[pos + 1] << 8));
          pos += 2;
          break;
        case Op.BININT:
          if (pos + 4 > end) return this.operandPastWindow(opStart, base + pos + 4, opCount);
          stack.push(view.getInt32(pos, true));
          pos += 4;
          break;
        case Op.LONG1:
        case Op.LONG4: {
          const width = op === Op.LONG1 ? 1 : 4;
          if (pos + width > end) return this.operandPastWindow(opStart, base + pos + width, opCount);
          const n = width === 1 ? buf[pos] : view.getInt32(pos, true);
          pos += width;
          if (n < 0 || n > MAX_LONG_BYTES) throw bad(file, `malformed pickle: LONG4 integer of ${n} bytes (at most ${MAX_LONG_BYTES} accepted)`, base + opStart);
          if (n > end - pos) return this.dataPastWindow(pos, n, opStart, opCount, () => `malformed pickle: an integer of ${n} bytes runs past the end of the input`);
          stack.push(readLittleEndianInt(buf, pos, n));
          pos += n;
          break;
        }
        case Op.BINFLOAT:
          if (pos + 8 > end) return this.operandPastWindow(opStart, base + pos + 8, opCount);
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
          if (stack.length === 0 || (marks.length > 0 && marks[marks.length - 1] === stack.length)) throw underflow(file, "MEMOIZE", base + opStart);
          memo.push(stack[stack.length - 1]);
          break;
        case Op.BINPUT:
        case Op.LONG_BINPUT: {
          const width = op === Op.BINPUT ? 1 : 4;
          if (pos + width > end) return this.operandPastWindow(opStart, base + pos + width, opCount);
          const index = readLength(buf, view, pos, width);
          pos += width;
          // a memo index never exceeds the number of opcodes in the input; refusing larger ones keeps a
          // hostile index from allocating a huge memo
          if (index > base + end) {
            if (!final && total < 0) return this.suspend(opStart, index, base + opStart, opCount);
            if (index > (final ? base + end : total)) throw bad(file, `malformed pickle: memo index ${index} is larger than the input`, base + opStart);
          }
          if (stack.length === 0 || (marks.length > 0 && marks[marks.length - 1] === stack.length)) throw underflow(file, "BINPUT", base + opStart);
          memo.set(index, stack[stack.length - 1]);
          flat.forgetKey(index);
          break;
        }
        case Op.BINGET:
        case Op.LONG_BINGET: {
          const width = op === Op.BINGET ? 1 : 4;
          if (pos + width > end) return this.operandPastWindow(opStart, base + pos + width, opCount);
          const index = readLength(buf, view, pos, width);
          pos += width;
          const value = memo.get(index);
          if (value === undefined) throw bad(file, `malformed pickle: memo index ${index} out of range (the memo holds ${memo.length} values)`, base + opStart);
          stack.push(value);
          break;
        }
        default:
          throw bad(file, describeRefusedOpcode(op), base + opStart);
      }
    }
  }
}

function setItems(stack: unknown[], target: unknown, from: number, to: number, file: string, at: number): void {
  if (target instanceof ContainerSink) {
    target.setItems(stack, from, to);
    return;
  }
  if (typeof target !== "object" || target === null || Object.getPrototypeOf(target) !== null) {
    throw bad(file, "malformed pickle: SETITEM(S) on a value that is not a dict", at);
  }
  const dict = target as Record<string, unknown>;
  for (let i = from; i < to; i += 2) {
    const key = stack[i];
    if (typeof key === "string") dict[key] = stack[i + 1];
    else if (typeof key === "number" || typeof key === "bigint") dict[String(key)] = stack[i + 1];
    else throw bad(file, `malformed snapshot: a dict key is ${key === null ? "None" : Array.isArray(key) ? "a tuple" : typeof key}, expected a string`, at);
  }
}

function appendItems(stack: unknown[], target: unknown, from: number, to: number, file: string, at: number): void {
  if (target instanceof ContainerSink) {
    target.appendItems(stack, from, to);
    return;
  }
  if (!Array.isArray(target)) throw bad(file, "malformed pickle: APPEND(S) on a value that is not a list", at);
  for (let i = from; i < to; i++) target.push(stack[i]);
}

/** The unsigned little-endian integer of `width` bytes (1, 4 or 8) at `pos`: a length or a memo index. */
function readLength(buf: Uint8Array, view: DataView, pos: number, width: number): number {
  return width === 1 ? buf[pos] : width === 4 ? view.getUint32(pos, true) : view.getUint32(pos, true) + view.getUint32(pos + 4, true) * TWO_POW_32;
}

function bad(file: string, detail: string, at: number): TraceError {
  return new TraceError(file, detail, { byteOffset: at });
}

function truncated(file: string, opStart: number, end: number): TraceError {
  return bad(file, `truncated pickle: the input ends (at byte ${end}) inside the opcode at byte ${opStart}, before STOP`, end);
}

function underflow(file: string, what: string, at: number): TraceError {
  return bad(file, `malformed pickle: ${what} with too few values on the stack`, at);
}

function noMark(file: string, what: string, at: number): TraceError {
  return bad(file, `malformed pickle: ${what} without a MARK`, at);
}
