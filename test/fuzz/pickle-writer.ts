/**
 * A small pickle writer for plain data, enough to write snapshot dictionaries as CPython's pickle
 * module does at protocols 2 to 5 (and the TorchScript pickler's protocol-2 style): memoized
 * containers and strings (BINPUT / MEMOIZE), shared objects as BINGET, FRAMEs of about 64 KiB at
 * protocol 4+, the integer opcodes CPython picks by size, tuples as TUPLE1-3. It exists to make fuzz
 * seeds and test fixtures in every protocol from dictionaries built in code; it never reads pickles.
 *
 * Values: null, boolean, number (integers as ints, others as BINFLOAT), bigint, string, Uint8Array,
 * arrays (lists), `tuple([...])`, and plain objects (dicts with string keys).
 */
const TUPLE = Symbol("tuple");
export interface PickleTuple {
  [TUPLE]: true;
  items: unknown[];
}
export function tuple(items: unknown[]): PickleTuple {
  return { [TUPLE]: true, items };
}
const isTuple = (v: unknown): v is PickleTuple => typeof v === "object" && v !== null && TUPLE in v;

const FRAME_TARGET_BYTES = 64 * 1024;
const BATCH = 1000; // CPython's _BATCHSIZE for APPENDS / SETITEMS

class ByteSink {
  private buf = new Uint8Array(1 << 16);
  length = 0;
  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  uint(n: number, width: number): void {
    for (let i = 0; i < width; i++) this.byte(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export function writePickle(value: unknown, protocol: 2 | 3 | 4 | 5 = 4): Uint8Array {
  const out = new ByteSink();
  let frame = new ByteSink();
  const memo = new Map<unknown, number>();
  const encoder = new TextEncoder();

  const flushFrame = (force: boolean) => {
    if (protocol < 4 || frame.length === 0 || (!force && frame.length < FRAME_TARGET_BYTES)) return;
    out.byte(0x95);
    out.uint(frame.length, 8);
    out.bytes(frame.result());
    frame = new ByteSink();
  };
  const w = () => (protocol >= 4 ? frame : out);

  const memoize = (v: unknown) => {
    const idx = memo.size;
    memo.set(v, idx);
    if (protocol >= 4) w().byte(0x94);
    else if (idx < 256) {
      w().byte(0x71);
      w().byte(idx);
    } else {
      w().byte(0x72);
      w().uint(idx, 4);
    }
  };
  const memoGet = (v: unknown): boolean => {
    const idx = memo.get(v);
    if (idx === undefined) return false;
    if (idx < 256) {
      w().byte(0x68);
      w().byte(idx);
    } else {
      w().byte(0x6a);
      w().uint(idx, 4);
    }
    return true;
  };

  const writeInt = (n: bigint) => {
    const s = w();
    if (n >= 0n && n < 256n) {
      s.byte(0x4b);
      s.byte(Number(n));
    } else if (n >= 0n && n < 65536n) {
      s.byte(0x4d);
      s.uint(Number(n), 2);
    } else if (n >= -(2n ** 31n) && n < 2n ** 31n) {
      s.byte(0x4a);
      s.uint(Number(BigInt.asUintN(32, n)), 4);
    } else {
      const bytes: number[] = [];
      let x = n;
      // little-endian two's complement, shortest form (as CPython's encode_long)
      for (;;) {
        bytes.push(Number(BigInt.asUintN(8, x)));
        x >>= 8n;
        const sign = (bytes[bytes.length - 1] & 0x80) !== 0;
        if ((x === 0n && !sign) || (x === -1n && sign)) break;
      }
      s.byte(0x8a);
      s.byte(bytes.length);
      for (const b of bytes) s.byte(b);
    }
  };

  const write = (v: unknown): void => {
    const s = w();
    if (v === null || v === undefined) s.byte(0x4e);
    else if (v === true) s.byte(0x88);
    else if (v === false) s.byte(0x89);
    else if (typeof v === "bigint") writeInt(v);
    else if (typeof v === "number") {
      if (Number.isInteger(v) && !Object.is(v, -0)) writeInt(BigInt(v));
      else {
        s.byte(0x47);
        const dv = new DataView(new ArrayBuffer(8));
        dv.setFloat64(0, v, false);
        s.bytes(new Uint8Array(dv.buffer));
      }
    } else if (typeof v === "string") {
      if (memoGet(v)) return;
      const b = encoder.encode(v);
      if (b.length < 256 && protocol >= 4) {
        s.byte(0x8c);
        s.byte(b.length);
      } else {
        s.byte(0x58);
        s.uint(b.length, 4);
      }
      s.bytes(b);
      memoize(v);
    } else if (v instanceof Uint8Array) {
      if (protocol < 3) throw new Error("bytes need pickle protocol 3+");
      if (v.length < 256) {
        s.byte(0x43);
        s.byte(v.length);
      } else {
        s.byte(0x42);
        s.uint(v.length, 4);
      }
      s.bytes(v);
      memoize(v);
    } else if (isTuple(v)) {
      if (memoGet(v)) return;
      const n = v.items.length;
      if (n === 0) s.byte(0x29);
      else if (n <= 3) {
        for (const x of v.items) write(x);
        w().byte(0x84 + n);
      } else {
        s.byte(0x28);
        for (const x of v.items) write(x);
        w().byte(0x74);
      }
      memoize(v);
    } else if (Array.isArray(v)) {
      if (memoGet(v)) return;
      s.byte(0x5d);
      memoize(v);
      for (let i = 0; i < v.length; i += BATCH) {
        const batch = v.slice(i, i + BATCH);
        if (batch.length === 1) {
          write(batch[0]);
          w().byte(0x61);
        } else {
          w().byte(0x28);
          for (const x of batch) write(x);
          w().byte(0x65);
        }
        flushFrame(false);
      }
    } else if (typeof v === "object") {
      if (memoGet(v)) return;
      s.byte(0x7d);
      memoize(v);
      const entries = Object.entries(v as Record<string, unknown>);
      for (let i = 0; i < entries.length; i += BATCH) {
        const batch = entries.slice(i, i + BATCH);
        if (batch.length === 1) {
          write(batch[0][0]);
          write(batch[0][1]);
          w().byte(0x73);
        } else {
          w().byte(0x28);
          for (const [k, x] of batch) {
            write(k);
            write(x);
          }
          w().byte(0x75);
        }
        flushFrame(false);
      }
    } else throw new Error(`cannot pickle a ${typeof v}`);
  };

  out.byte(0x80);
  out.byte(protocol);
  write(value);
  w().byte(0x2e);
  flushFrame(true);
  return out.result();
}
