// The pickle decoder's fast path for runs of trace entries, compiled to WebAssembly so that the
// bulk of a snapshot is decoded by compiled code from its first byte (the JavaScript decoder spends
// the first tens of thousands of entries in V8's interpreter before it is optimized).
//
// It decodes only the shape PyTorch writes for a trace entry, and only when every value is one it
// can prove the JavaScript decoder would accept: a flat dict of memoized string keys; integer,
// action-string and None values; ASCII strings; stack frames as a list of flat dicts of scalars.
// At anything else it stops before the entry it cannot take, having written nothing for it, and
// the JavaScript decoder (src/pickle-decoder.ts) takes that entry itself: so every error message,
// and every value of every unusual file, is the JavaScript decoder's. It never reports an error.
//
// Memory, laid out by the caller (src/entry-scanner.ts):
//   input    the window of the pickle being decoded (src/pickle-stream.ts reads the pickle a window
//            at a time; offsets here are the window's: input offset = offset + inputStart)
//   names    the strings with a meaning, each [length u8, field i8, action u8, frames u8, bytes...]
//   rows     the entries decoded by one call, as columns (see ROW_* below)
//   memo     one 12-byte record per memo index (see MEMO_* below), shared with the JS decoder's memo
//
// Invariants: a call only appends memo records and rows for entries it completed; `memoLength`
// and the rows it reports cover exactly those entries. Every read is bounds-checked against the
// input's end before it is made.

// pickle opcodes (pickletools.py)
const MARK: u32 = 0x28;
const EMPTY_DICT: u32 = 0x7d;
const EMPTY_LIST: u32 = 0x5d;
const SETITEM: u32 = 0x73;
const SETITEMS: u32 = 0x75;
const APPEND: u32 = 0x61;
const APPENDS: u32 = 0x65;
const SHORT_BINUNICODE: u32 = 0x8c;
const BINUNICODE: u32 = 0x58;
const BININT: u32 = 0x4a;
const BININT1: u32 = 0x4b;
const BININT2: u32 = 0x4d;
const LONG1: u32 = 0x8a;
const BINFLOAT: u32 = 0x47;
const NEWTRUE: u32 = 0x88;
const NEWFALSE: u32 = 0x89;
const NONE: u32 = 0x4e;
const MEMOIZE: u32 = 0x94;
const BINPUT: u32 = 0x71;
const LONG_BINPUT: u32 = 0x72;
const BINGET: u32 = 0x68;
const LONG_BINGET: u32 = 0x6a;

// memo record kinds; src/entry-scanner.ts MemoKind mirrors them
const MEMO_EMPTY: u8 = 0; // never stored
const MEMO_ENTRY: u8 = 1; // a trace entry dict (the JS decoder's entry sink)
const MEMO_SKIPPED: u8 = 2; // a container inside stack frames (the JS decoder's SKIPPED)
const MEMO_STRING: u8 = 3; // an ASCII string of the input, stored here (pos, length)
const MEMO_JS_STRING: u8 = 4; // a string the JS decoder stored (classified by it)
const MEMO_JS_VALUE: u8 = 5; // any other value the JS decoder stored
const MEMO_RECORD_BYTES: i32 = 12; // kind u8, field i8, action u8, frames u8, pos u32, length u32

// trace entry fields: src/column-builder.ts Field
const FIELD_ACTION: i32 = -1;
const FIELD_ADDR: i32 = 1;
const FIELD_DEVICE_FREE: i32 = 2;
const FIELD_SIZE: i32 = 3;
const FIELD_STREAM: i32 = 4;
const FIELD_TIME_US: i32 = 5;
// actions: src/model.ts Action
const ACTION_OOM: i32 = 8;
const ACTION_SNAPSHOT: i32 = 9;
const ACTION_OTHER: i32 = 10;

/** Number.MAX_SAFE_INTEGER: larger integers are not exact as doubles */
const MAX_SAFE_INTEGER: u64 = 0x1fffffffffffff;

// how a call ended
const STOPPED_AT_NON_ENTRY: i32 = 0; // the next opcode is not an entry (the list's APPENDS, say)
const STOPPED_AT_UNUSUAL_ENTRY: i32 = 1; // the JS decoder must take the entry at `stopPos`
const STOPPED_FULL: i32 = 2; // rows or memo records ran out: call again after flushing

let inputBias: usize = 0; // the input byte at pickle offset p is at inputBias + p (wrapping)
let inputEnd: i32 = 0;
let names: usize = 0;
let nameCount: i32 = 0;
let nameLengths: u64 = 0; // bit n set when some name is n bytes long
let nameFirstLow: u64 = 0; // bit b set when some name begins with byte b (< 64)
let nameFirstHigh: u64 = 0; // bit b - 64 set when some name begins with byte b (64..127)
let rowAction: usize = 0;
let rowAddr: usize = 0;
let rowSize: usize = 0;
let rowStream: usize = 0;
let rowTime: usize = 0;
let rowCapacity: i32 = 0;
let memo: usize = 0;
let memoCapacity: i32 = 0;

let stopPos: i32 = 0;
let memoLength: i32 = 0;
let rows: i32 = 0;

/** Where everything is; `inputStart` is the pickle offset of the first input byte. */
export function configure(
  inputPtr: usize, inputLength: i32, start: i32,
  namesPtr: usize, namesCount: i32,
  rowsPtr: usize, rowsCapacity: i32,
  memoPtr: usize, memoRecords: i32,
): void {
  inputBias = inputPtr - <usize>start;
  inputEnd = start + inputLength;
  names = namesPtr;
  nameCount = namesCount;
  nameLengths = 0;
  nameFirstLow = 0;
  nameFirstHigh = 0;
  let entry = names;
  for (let k = 0; k < nameCount; k++) {
    const length = <u64>load<u8>(entry);
    if (length < 64) nameLengths |= <u64>1 << length;
    if (length > 0) {
      const first = <u64>load<u8>(entry, 4);
      if (first < 64) nameFirstLow |= <u64>1 << first;
      else if (first < 128) nameFirstHigh |= <u64>1 << (first - 64);
    }
    entry += 4 + <usize>length;
  }
  rowCapacity = rowsCapacity;
  rowAddr = rowsPtr; // f64 columns first, for alignment
  rowSize = rowAddr + (<usize>rowsCapacity << 3);
  rowStream = rowSize + (<usize>rowsCapacity << 3);
  rowTime = rowStream + (<usize>rowsCapacity << 3);
  rowAction = rowTime + (<usize>rowsCapacity << 3);
  memo = memoPtr;
  memoCapacity = memoRecords;
}

export function stoppedAt(): i32 {
  return stopPos;
}
export function memoLengthAfter(): i32 {
  return memoLength;
}
export function rowsDecoded(): i32 {
  return rows;
}

/**
 * Decodes consecutive trace entries from pickle offset `pos` (each starting at EMPTY_DICT) into the
 * row columns, from row 0; `length` is the memo's length. Returns how it stopped; stoppedAt(),
 * memoLengthAfter() and rowsDecoded() say where and what it did. A run that ends at an opcode other
 * than an entry ends one entry early: the last entry is the JS decoder's (see below).
 */
export function scan(pos: i32, length: i32): i32 {
  memoLength = length;
  rows = 0;
  stopPos = pos;
  let lastStart = pos;
  let memoBeforeLast = length;
  for (;;) {
    if (stopPos >= inputEnd || byteAt(stopPos) != EMPTY_DICT) {
      // The last entry before anything else goes back to the JS decoder. What follows may still
      // act on the dict on top of the stack (a damaged pickle's SETITEMS or APPENDS), and the JS
      // decoder keeps that entry open until the next one begins (ColumnBuilder.beginRow); a row
      // taken here would already be committed, so errors and values would differ from its.
      if (rows > 0) {
        rows--;
        stopPos = lastStart;
        memoLength = memoBeforeLast;
      }
      return STOPPED_AT_NON_ENTRY;
    }
    if (rows == rowCapacity) return STOPPED_FULL;
    lastStart = stopPos;
    memoBeforeLast = memoLength;
    const next = entry(stopPos);
    if (next == FULL) return STOPPED_FULL;
    if (next < 0) return STOPPED_AT_UNUSUAL_ENTRY;
    stopPos = next;
    rows++;
  }
  return STOPPED_AT_NON_ENTRY; // not reached (asc wants a return after the loop)
}

const UNUSUAL: i32 = -1;
const FULL: i32 = -2;

// the state the helpers below share with entry() on its rarer paths (it keeps its own in locals)
let action: i32 = 0;
let memoNext: i32 = 0; // memo length inside the entry (committed at its end)

/**
 * One entry at `start` (its EMPTY_DICT): the offset after its SETITEMS, or UNUSUAL / FULL. The
 * common shapes (a memoized key; an integer, a memoized action, a short ASCII string or a memoized
 * value) are decoded here with the state in locals; the rest goes through the helpers.
 */
function entry(start: i32): i32 {
  const end = inputEnd;
  const bias = inputBias;
  let m = memoLength;
  let has: i32 = 0;
  let act: i32 = 0;
  let vAddr: f64 = 0;
  let vFree: f64 = 0;
  let vSize: f64 = 0;
  let vStream: f64 = 0;
  let vTime: f64 = NaN;
  let p = start + 1;
  if (p < end && <u32>load<u8>(bias + <usize>p) == MEMOIZE) {
    if (m >= memoCapacity) return FULL;
    writeRecord(m++, MEMO_ENTRY, 0, 0, 0);
    p++;
  }
  if (p >= end || <u32>load<u8>(bias + <usize>p) != MARK) return UNUSUAL;
  p++;
  for (;;) {
    if (p + 9 > end) return UNUSUAL; // every key and value this loop takes is shorter, with SETITEMS after
    let op = <u32>load<u8>(bias + <usize>p);
    if (op == SETITEMS) {
      p++;
      break;
    }
    // the key: a string, by its memo record or its bytes; `name` is where its meaning is
    let name: usize = 0;
    if (op == LONG_BINGET || op == BINGET) {
      const index = op == BINGET ? <i32>load<u8>(bias + <usize>p, 1) : <i32>load<u32>(bias + <usize>p, 1);
      if (index < 0 || index >= m) return UNUSUAL;
      name = memo + <usize>index * MEMO_RECORD_BYTES;
      const kind = load<u8>(name);
      if (kind != MEMO_STRING && kind != MEMO_JS_STRING) return UNUSUAL;
      p += op == BINGET ? 2 : 5;
    } else if (op == SHORT_BINUNICODE) {
      const n = <i32>load<u8>(bias + <usize>p, 1);
      const at = p + 2;
      if (at + n > end || !isAscii(at, n)) return UNUSUAL;
      name = nameOf(at, n);
      memoNext = m;
      const q = memoizeString(at + n, at, n, name);
      if (q < 0) return q;
      m = memoNext;
      p = q;
    } else {
      return UNUSUAL;
    }
    const field = name == 0 ? 0 : <i32>load<i8>(name, 1);
    // the value
    if (p + 9 > end) return UNUSUAL;
    op = <u32>load<u8>(bias + <usize>p);
    if (field > 0) {
      let value: f64 = 0;
      if (op == LONG1) {
        const n = <i32>load<u8>(bias + <usize>p, 1);
        // up to 7 bytes, non-negative and at most 2^53 - 1, as addresses and microsecond times
        // are; one 8-byte load masked to n bytes (the p + 9 <= end check above covers it)
        if (n == 0 || n > 7 || <u32>load<u8>(bias + <usize>(p + 1 + n)) >= 0x80) return UNUSUAL;
        const raw = load<u64>(bias + <usize>p, 2) & ((<u64>1 << (<u64>n << 3)) - 1);
        if (raw > MAX_SAFE_INTEGER) return UNUSUAL; // not exact as a double: the JS decoder's
        value = <f64>raw;
        p += 2 + n;
      } else if (op == BININT1) {
        value = <f64>load<u8>(bias + <usize>p, 1);
        p += 2;
      } else if (op == BININT2) {
        value = <f64>load<u16>(bias + <usize>p, 1);
        p += 3;
      } else if (op == BININT) {
        const v = load<i32>(bias + <usize>p, 1);
        if (v < 0) return UNUSUAL; // negative: the JS decoder decides what that means
        value = <f64>v;
        p += 5;
      } else if (op == NONE && field == FIELD_TIME_US) {
        p++; // time_us None leaves the entry's time as it was, as ColumnBuilder.setOther does
        continue;
      } else {
        return UNUSUAL;
      }
      if (field == FIELD_ADDR) vAddr = value;
      else if (field == FIELD_SIZE) vSize = value;
      else if (field == FIELD_TIME_US) vTime = value;
      else if (field == FIELD_STREAM) vStream = value;
      else vFree = value;
      has |= 1 << field;
    } else if (field == FIELD_ACTION) {
      memoNext = m;
      p = actionValue(p);
      if (p < 0) return p;
      m = memoNext;
      act = action;
    } else if (op == LONG_BINGET || op == BINGET) {
      const index = op == BINGET ? <i32>load<u8>(bias + <usize>p, 1) : <i32>load<u32>(bias + <usize>p, 1);
      if (index < 0 || index >= m || load<u8>(memo + <usize>index * MEMO_RECORD_BYTES) == MEMO_EMPTY) return UNUSUAL;
      p += op == BINGET ? 2 : 5;
    } else {
      memoNext = m;
      p = op == EMPTY_LIST && name != 0 && load<u8>(name, 3) != 0 ? skipFrames(p) : skipScalar(p);
      if (p < 0) return p;
      m = memoNext;
    }
  }
  // the checks ColumnBuilder.commit makes: an entry they would refuse is the JS decoder's to report
  if (act == 0) return UNUSUAL;
  const addrField = act == ACTION_OOM ? FIELD_DEVICE_FREE : FIELD_ADDR;
  const needsAddr = act != ACTION_OTHER && act != ACTION_SNAPSHOT && act != ACTION_OOM;
  const needsSize = act != ACTION_OTHER && act != ACTION_SNAPSHOT;
  if (needsAddr && (has & (1 << addrField)) == 0) return UNUSUAL;
  if (needsSize && (has & (1 << FIELD_SIZE)) == 0) return UNUSUAL;
  const offset8 = <usize>rows << 3;
  store<f64>(rowAddr + offset8, (has & (1 << addrField)) != 0 ? (addrField == FIELD_ADDR ? vAddr : vFree) : 0);
  store<f64>(rowSize + offset8, (has & (1 << FIELD_SIZE)) != 0 ? vSize : 0);
  store<f64>(rowStream + offset8, (has & (1 << FIELD_STREAM)) != 0 ? vStream : 0);
  store<f64>(rowTime + offset8, vTime);
  store<u8>(rowAction + <usize>rows, <u8>act);
  memoLength = m;
  return p;
}

/** The action: a string, by its memo record or its bytes. */
function actionValue(p: i32): i32 {
  const op = byteAt(p);
  if (op == BINGET || op == LONG_BINGET) {
    const index = op == BINGET ? (p + 2 <= inputEnd ? <i32>byteAt(p + 1) : -1) : (p + 5 <= inputEnd ? u32At(p + 1) : -1);
    if (index < 0 || index >= memoNext) return UNUSUAL;
    const record = memo + <usize>index * MEMO_RECORD_BYTES;
    const kind = load<u8>(record);
    if (kind != MEMO_STRING && kind != MEMO_JS_STRING) return UNUSUAL;
    action = <i32>load<u8>(record, 2);
    return p + (op == BINGET ? 2 : 5);
  }
  if (op != SHORT_BINUNICODE || p + 2 > inputEnd) return UNUSUAL;
  const n = <i32>byteAt(p + 1);
  const at = p + 2;
  if (at + n > inputEnd || !isAscii(at, n)) return UNUSUAL;
  const name = nameOf(at, n);
  action = name == 0 ? ACTION_OTHER : <i32>load<u8>(name, 2);
  return memoizeString(at + n, at, n, name);
}

/** A value the entry does not keep: a scalar, decoded only as far as the memo needs. */
function skipScalar(p: i32): i32 {
  const op = byteAt(p);
  if (op == BININT1) return p + 2 <= inputEnd ? p + 2 : UNUSUAL;
  if (op == BININT2) return p + 3 <= inputEnd ? p + 3 : UNUSUAL;
  if (op == BININT) return p + 5 <= inputEnd ? p + 5 : UNUSUAL;
  if (op == BINFLOAT) return p + 9 <= inputEnd ? p + 9 : UNUSUAL;
  if (op == NONE || op == NEWTRUE || op == NEWFALSE) return p + 1;
  if (op == LONG1) {
    if (p + 2 > inputEnd) return UNUSUAL;
    const q = p + 2 + <i32>byteAt(p + 1);
    return q <= inputEnd ? q : UNUSUAL;
  }
  if (op == BINGET || op == LONG_BINGET) {
    const index = op == BINGET ? (p + 2 <= inputEnd ? <i32>byteAt(p + 1) : -1) : (p + 5 <= inputEnd ? u32At(p + 1) : -1);
    if (index < 0 || index >= memoNext || load<u8>(memo + <usize>index * MEMO_RECORD_BYTES) == MEMO_EMPTY) return UNUSUAL;
    return p + (op == BINGET ? 2 : 5);
  }
  if (op == SHORT_BINUNICODE || op == BINUNICODE) {
    const width = op == SHORT_BINUNICODE ? 1 : 4;
    if (p + 1 + width > inputEnd) return UNUSUAL;
    const n = width == 1 ? <i32>byteAt(p + 1) : u32At(p + 1);
    const at = p + 1 + width;
    if (n < 0 || n > inputEnd - at || !isAscii(at, n)) return UNUSUAL;
    return memoizeString(at + n, at, n, nameOf(at, n));
  }
  return UNUSUAL;
}

/**
 * A `frames` list (skipped by the JS decoder too): `EMPTY_LIST MEMOIZE?` then items, each batch
 * `MARK item* APPENDS` or one dict followed by APPEND; an item is a flat dict of scalars, or a scalar.
 */
function skipFrames(p: i32): i32 {
  p++;
  if (p < inputEnd && byteAt(p) == MEMOIZE) {
    if (!remember(MEMO_SKIPPED, 0, 0, 0)) return FULL;
    p++;
  }
  for (;;) {
    if (p >= inputEnd) return UNUSUAL;
    const op = byteAt(p);
    if (op == MARK) {
      p++;
      for (;;) {
        if (p >= inputEnd) return UNUSUAL;
        if (byteAt(p) == APPENDS) {
          p++;
          break;
        }
        p = byteAt(p) == EMPTY_DICT ? skipFrameDict(p) : skipScalar(p);
        if (p < 0) return p;
      }
    } else if (op == EMPTY_DICT) {
      p = skipFrameDict(p);
      if (p < 0) return p;
      if (p >= inputEnd || byteAt(p) != APPEND) return UNUSUAL;
      p++;
    } else {
      return p; // the list ends: the entry's next key follows
    }
  }
  return UNUSUAL; // not reached
}

/** One frame: `EMPTY_DICT MEMOIZE? MARK (scalar scalar)* SETITEMS`, or one pair and SETITEM. */
function skipFrameDict(p: i32): i32 {
  p++;
  if (p < inputEnd && byteAt(p) == MEMOIZE) {
    if (!remember(MEMO_SKIPPED, 0, 0, 0)) return FULL;
    p++;
  }
  if (p >= inputEnd) return UNUSUAL;
  if (byteAt(p) != MARK) {
    p = skipScalar(p);
    if (p >= 0) p = skipScalar(p);
    if (p < 0) return p;
    return p < inputEnd && byteAt(p) == SETITEM ? p + 1 : UNUSUAL;
  }
  p++;
  for (;;) {
    if (p >= inputEnd) return UNUSUAL;
    if (byteAt(p) == SETITEMS) return p + 1;
    p = skipScalar(p);
    if (p >= 0) p = skipScalar(p);
    if (p < 0) return p;
  }
  return UNUSUAL; // not reached
}

/**
 * After a string at [at, at+n) ending at `p`: a MEMOIZE (or a BINPUT to the next free index, which
 * is the same) stores it. Returns the offset after that, or UNUSUAL for any other memo opcode.
 */
function memoizeString(p: i32, at: i32, n: i32, name: usize): i32 {
  if (p >= inputEnd) return p;
  const op = byteAt(p);
  let q = p;
  if (op == MEMOIZE) {
    q = p + 1;
  } else if (op == BINPUT || op == LONG_BINPUT) {
    const index = op == BINPUT ? (p + 2 <= inputEnd ? <i32>byteAt(p + 1) : -1) : (p + 5 <= inputEnd ? u32At(p + 1) : -1);
    if (index != memoNext) return UNUSUAL;
    q = p + (op == BINPUT ? 2 : 5);
  } else {
    return p;
  }
  const field = name == 0 ? 0 : <i32>load<i8>(name, 1);
  const act = name == 0 ? ACTION_OTHER : <i32>load<u8>(name, 2);
  const frames = name == 0 ? 0 : <i32>load<u8>(name, 3);
  if (!rememberString(at, n, field, act, frames)) return FULL;
  return q;
}

/** Stores the next memo record (at memoNext); false when there is no room for it. */
function remember(kind: u8, field: i32, act: i32, frames: i32): bool {
  if (memoNext >= memoCapacity) return false;
  writeRecord(memoNext++, kind, field, act, frames);
  return true;
}

// @ts-ignore: decorator
@inline function writeRecord(index: i32, kind: u8, field: i32, act: i32, frames: i32): void {
  const record = memo + <usize>index * MEMO_RECORD_BYTES;
  store<u32>(record, <u32>kind | ((<u32>field & 0xff) << 8) | ((<u32>act & 0xff) << 16) | ((<u32>frames & 0xff) << 24));
}

function rememberString(at: i32, n: i32, field: i32, act: i32, frames: i32): bool {
  if (!remember(MEMO_STRING, field, act, frames)) return false;
  const record = memo + <usize>(memoNext - 1) * MEMO_RECORD_BYTES;
  store<u32>(record, <u32>at, 4);
  store<u32>(record, <u32>n, 8);
  return true;
}

/** The names-table entry whose bytes equal [at, at+n), or 0. */
function nameOf(at: i32, n: i32): usize {
  // most strings are of no name's length (file names in frames, "N/A" compile contexts)
  if (n >= 64 || (nameLengths & (<u64>1 << <u64>n)) == 0) return 0;
  if (n > 0) {
    const first = byteAt(at);
    if (((first < 64 ? nameFirstLow : first < 128 ? nameFirstHigh : 0) & (<u64>1 << <u64>(first & 63))) == 0) return 0;
  }
  let entry = names;
  for (let k = 0; k < nameCount; k++) {
    const length = <i32>load<u8>(entry);
    if (length == n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (load<u8>(entry + 4 + <usize>i) != byteAt(at + i)) {
          same = false;
          break;
        }
      }
      if (same) return entry;
    }
    entry += 4 + <usize>length;
  }
  return 0;
}

function isAscii(at: i32, n: i32): bool {
  for (let i = 0; i < n; i++) if (byteAt(at + i) >= 0x80) return false;
  return true;
}

// @ts-ignore: decorator
@inline function byteAt(p: i32): u32 {
  return <u32>load<u8>(inputBias + <usize>p);
}

// @ts-ignore: decorator
@inline function u32At(p: i32): i32 {
  return <i32>load<u32>(inputBias + <usize>p);
}
