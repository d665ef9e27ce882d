/**
 * The decoder's fast path for a dict whose sink takes pairs directly (ContainerSink.keyCode/row/
 * setOther): `MEMOIZE? MARK (key value)* SETITEMS` with string keys and flat values, which is how
 * PyTorch writes every trace entry. Pairs go straight to the sink and integers never leave this
 * function, so a trace entry costs no allocation at all.
 *
 * At the first opcode outside that shape it stops and leaves the stack exactly as the general loop
 * would have it there (the MARK open, a key read but not yet paired pushed), and the loop goes on:
 * a frames list, say, is decoded (and skipped) by the general loop, and SETITEMS then hands the rest
 * of the pairs to the sink's setItems. Bounds failures, and the end of a window of a streamed input
 * (pickle-stream.ts), also just stop here; the general loop reports them, or waits for the next
 * window, at the same opcode.
 *
 * It is its own small function so that V8 optimizes it alone, with monomorphic feedback, rather than
 * as a corner of the decoder's big loop.
 */
import { Op } from "./pickle-opcodes.js";
import { SKIPPED, takesPairs, type ContainerSink, type PickleShaper } from "./pickle-shaping.js";
import type { PickleMemo } from "./pickle-memo.js";
import { readLittleEndianInt, readSmallUnsigned, type StringDecoder } from "./pickle-scalars.js";

/** progress is reported every this many list items */
const PROGRESS_BITS = 16;
const PROGRESS_EVERY_ITEMS = 1 << PROGRESS_BITS;
const TWO_POW_32 = 4294967296;
/** Key codes are cached for memo indices below this (keys are memoized early in a file). */
const KEY_CODE_CACHE = 1 << 16;
/** keyCodes entry for a memo index whose key has not been classified yet */
const KEY_UNKNOWN = -0x80000000;

export class FlatDictDecoder {
  private buf: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(new ArrayBuffer(0));
  private end = 0;
  /** progress within the current window (setWindow) */
  private onProgress: ((bytesDone: number, bytesTotal: number) => void) | undefined = undefined;
  /** the key code of the string at each memo index, for `sink` */
  private readonly keyCodes = new Int32Array(KEY_CODE_CACHE).fill(KEY_UNKNOWN);
  private sink: ContainerSink | undefined;

  constructor(
    private readonly memo: PickleMemo,
    private readonly strings: StringDecoder,
    /** open MARKs allowed (ImportLimits.depth); at the limit this path stops and the general loop refuses */
    private readonly maxDepth: number,
  ) {}

  /**
   * The input from now on: the decoder's current window of the pickle (pickle-decoder.ts). Offsets
   * are the window's; `onProgress` gets (offset, window length).
   */
  setWindow(buf: Uint8Array, onProgress: ((bytesDone: number, bytesTotal: number) => void) | undefined): void {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.end = buf.length;
    this.onProgress = onProgress;
  }

  /** BINPUT replaced the memo value at `index`: a cached key code for it is stale. */
  forgetKey(index: number): void {
    if (index < KEY_CODE_CACHE) this.keyCodes[index] = KEY_UNKNOWN;
  }

  /**
   * Runs the items of `list`, just pushed on `stack`, from `start` (right after its EMPTY_LIST): the
   * MARK / APPENDS batches, FRAMEs, and each dict item through the shaper and decodeDict, exactly as
   * the general loop would. Returns the position where the general loop goes on: the first opcode
   * that is none of these (the list's end, or anything unusual, which the general loop then handles
   * or reports).
   */
  decodeList(start: number, list: ContainerSink, stack: unknown[], marks: number[], shaper: PickleShaper): number {
    const { buf, end, memo } = this;
    let pos = start;
    let items = 0;
    for (;;) {
      if (pos >= end) return pos;
      const op = buf[pos];
      if (op === Op.EMPTY_DICT) {
        const owner = stack[stack.length - 1];
        if (owner === SKIPPED) return pos;
        if (list.decodeItems !== undefined) {
          const before = stack.length;
          const next = list.decodeItems(buf, pos, memo, stack);
          if (next !== pos) {
            const previous = items;
            items += stack.length - before;
            pos = next;
            if (items >>> PROGRESS_BITS !== previous >>> PROGRESS_BITS) this.onProgress?.(pos, end);
            continue;
          }
        }
        const dict = shaper.open("dict", owner) ?? Object.create(null);
        stack.push(dict);
        pos++;
        if (!takesPairs(dict)) return pos;
        pos = this.decodeDict(pos, dict, stack, marks);
        if ((++items & (PROGRESS_EVERY_ITEMS - 1)) === 0) this.onProgress?.(pos, end);
      } else if (op === Op.MARK) {
        if (marks.length >= this.maxDepth) return pos;
        marks.push(stack.length);
        pos++;
      } else if (op === Op.APPENDS) {
        const m = marks.length > 0 ? marks[marks.length - 1] : -1;
        if (m < 1 || stack[m - 1] !== list) return pos;
        marks.pop();
        list.appendItems(stack, m, stack.length);
        stack.length = m;
        pos++;
      } else if (op === Op.MEMOIZE) {
        if (stack[stack.length - 1] !== list || (marks.length > 0 && marks[marks.length - 1] === stack.length)) return pos;
        memo.push(list);
        pos++;
      } else if (op === Op.FRAME) {
        if (pos + 9 > end) return pos;
        const frameLength = this.view.getUint32(pos + 1, true) + this.view.getUint32(pos + 5, true) * TWO_POW_32;
        if (frameLength > end - pos - 9) return pos;
        pos += 9;
      } else {
        return pos;
      }
    }
  }

  /**
   * Decodes the items of `sink`, just pushed on `stack`, from `start` (right after its EMPTY_DICT);
   * returns the position where the general loop goes on.
   */
  decodeDict(start: number, sink: ContainerSink, stack: unknown[], marks: number[]): number {
    const { buf, view, end, memo, strings, keyCodes } = this;
    if (sink !== this.sink) {
      this.sink = sink;
      keyCodes.fill(KEY_UNKNOWN);
    }
    const row = sink.row!;
    let pos = start;
    if (pos < end && buf[pos] === Op.MEMOIZE) {
      memo.push(sink);
      pos++;
    }
    if (pos >= end || buf[pos] !== Op.MARK || marks.length >= this.maxDepth) return pos;
    pos++;
    marks.push(stack.length);
    for (;;) {
      if (pos >= end) return pos;
      // the key: a memoized string, or a new one (then usually memoized). A memo index whose key
      // code is cached holds that same string (MEMOIZE never overwrites, BINPUT calls forgetKey),
      // so the string itself is only fetched if this path gives up on the value.
      let op = buf[pos];
      let key: unknown = undefined;
      let keyIndex = -1;
      let code: number;
      if (op === Op.SETITEMS) {
        marks.pop();
        // the pairs are all handed over: setItems of none, as the general loop's SETITEMS would
        // after this path took them, so the sink does at SETITEMS what it does there
        sink.setItems(stack, stack.length, stack.length);
        return pos + 1;
      } else if (op === Op.BINGET || op === Op.LONG_BINGET) {
        const width = op === Op.BINGET ? 1 : 4;
        if (pos + 1 + width > end) return pos;
        keyIndex = width === 1 ? buf[pos + 1] : u32(buf, pos + 1);
        code = keyIndex < KEY_CODE_CACHE && keyIndex < memo.length ? keyCodes[keyIndex] : KEY_UNKNOWN;
        if (code === KEY_UNKNOWN) {
          key = memo.get(keyIndex);
          if (typeof key !== "string") return pos;
          code = sink.keyCode!(key);
          if (keyIndex < KEY_CODE_CACHE) keyCodes[keyIndex] = code;
        }
        pos += 1 + width;
      } else if (op === Op.SHORT_BINUNICODE) {
        if (pos + 2 > end) return pos;
        const n = buf[pos + 1];
        if (pos + 2 + n > end) return pos;
        key = strings.decode(buf, pos + 2, n);
        if (key === undefined) return pos;
        pos += 2 + n;
        code = sink.keyCode!(key as string);
        if (pos < end && buf[pos] === Op.MEMOIZE) {
          if (memo.length < KEY_CODE_CACHE) keyCodes[memo.length] = code;
          memo.push(key);
          pos++;
        }
      } else {
        return pos;
      }
      // the value: an integer stays a number in a register; anything else is a JS value
      op = pos < end ? buf[pos] : -1;
      let value: unknown = undefined;
      let num = 0;
      let isNum = false;
      switch (op) {
        case Op.BININT1:
          if (pos + 2 <= end) {
            num = buf[pos + 1];
            isNum = true;
            pos += 2;
          }
          break;
        case Op.BININT2:
          if (pos + 3 <= end) {
            num = buf[pos + 1] | (buf[pos + 2] << 8);
            isNum = true;
            pos += 3;
          }
          break;
        case Op.BININT:
          if (pos + 5 <= end) {
            num = view.getInt32(pos + 1, true);
            isNum = true;
            pos += 5;
          }
          break;
        case Op.LONG1: {
          if (pos + 2 > end) break;
          const n = buf[pos + 1];
          if (pos + 2 + n > end) break;
          num = readSmallUnsigned(buf, pos + 2, n);
          if (num === num) {
            isNum = true;
          } else {
            value = readLittleEndianInt(buf, pos + 2, n);
            if (typeof value === "number") {
              num = value;
              isNum = true;
            }
          }
          pos += 2 + n;
          break;
        }
        case Op.BINGET:
        case Op.LONG_BINGET: {
          const width = op === Op.BINGET ? 1 : 4;
          if (pos + 1 + width > end) break;
          value = memo.get(width === 1 ? buf[pos + 1] : u32(buf, pos + 1));
          if (value !== undefined) pos += 1 + width;
          break;
        }
        case Op.SHORT_BINUNICODE: {
          if (pos + 2 > end) break;
          const n = buf[pos + 1];
          if (pos + 2 + n > end) break;
          value = strings.decode(buf, pos + 2, n);
          if (value === undefined) break;
          pos += 2 + n;
          if (pos < end && buf[pos] === Op.MEMOIZE) {
            memo.push(value);
            pos++;
          }
          break;
        }
        case Op.NONE:
          value = null;
          pos++;
          break;
        default:
          break;
      }
      if ((isNum || value !== undefined) && (pos >= end || buf[pos] === Op.MEMOIZE || buf[pos] === Op.BINPUT || buf[pos] === Op.LONG_BINPUT)) {
        // the value itself is memoized (CPython's pickler never does so for an integer, but a pickle
        // may, and pickle.load accepts it): the pair goes on the stack, the general loop stores the
        // value in the memo, and SETITEMS hands the pair to setItems. So too where the window ends
        // right after the value: the next opcode, maybe a MEMOIZE, is only known in the next window.
        stack.push(key === undefined ? memo.get(keyIndex) : key, isNum ? num : value);
        return pos;
      }
      if (isNum) {
        if (code > 0) row[code] = num;
        else if (code < 0) sink.setOther!(code, num);
      } else if (value === undefined) {
        stack.push(key === undefined ? memo.get(keyIndex) : key); // a value this path does not take: the general loop decodes it
        return pos;
      } else if (code !== 0) {
        sink.setOther!(code, value);
      }
    }
  }
}

/** little-endian unsigned 32-bit integer at `at` (bounds checked by the caller) */
function u32(buf: Uint8Array, at: number): number {
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24)) >>> 0;
}
