/**
 * Builds pickle bytes opcode by opcode, for tests that need inputs no real snapshot has: hostile
 * opcodes, truncations, odd encodings. It writes what is asked, valid or not.
 */
export class PickleWriter {
  private readonly bytes: number[] = [];

  op(...codes: number[]): this {
    this.bytes.push(...codes);
    return this;
  }
  proto(version: number): this {
    return this.op(0x80, version);
  }
  mark(): this {
    return this.op(0x28);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  emptyList(): this {
    return this.op(0x5d);
  }
  memoize(): this {
    return this.op(0x94);
  }
  setitems(): this {
    return this.op(0x75);
  }
  appends(): this {
    return this.op(0x65);
  }
  stop(): this {
    return this.op(0x2e);
  }
  /** SHORT_BINUNICODE, or BINUNICODE for long strings */
  str(s: string): this {
    const utf8 = [...new TextEncoder().encode(s)];
    return utf8.length < 256 ? this.op(0x8c, utf8.length, ...utf8) : this.op(0x58, ...u32(utf8.length), ...utf8);
  }
  /** the smallest integer opcode that holds n, as CPython's pickler picks it */
  int(n: number | bigint): this {
    const big = BigInt(n);
    if (big >= 0n && big < 256n) return this.op(0x4b, Number(big));
    if (big >= 0n && big < 65536n) return this.op(0x4d, Number(big & 0xffn), Number(big >> 8n));
    if (big >= -(2n ** 31n) && big < 2n ** 31n) return this.op(0x4a, ...u32(Number(BigInt.asUintN(32, big))));
    const out: number[] = [];
    let v = big;
    do {
      out.push(Number(BigInt.asUintN(8, v)));
      v >>= 8n;
    } while (!(v === 0n && out[out.length - 1] < 0x80) && !(v === -1n && out[out.length - 1] >= 0x80));
    return this.op(0x8a, out.length, ...out);
  }
  /** a dict of string keys, as `EMPTY_DICT MEMOIZE MARK k v ... SETITEMS`, values written by `write` */
  dict(entries: [string, (w: this) => void][]): this {
    this.emptyDict().memoize().mark();
    for (const [key, write] of entries) {
      this.str(key).memoize();
      write(this);
    }
    return this.setitems();
  }
  /** a list as `EMPTY_LIST MEMOIZE MARK item ... APPENDS` */
  list(items: ((w: this) => void)[]): this {
    this.emptyList().memoize().mark();
    for (const write of items) write(this);
    return this.appends();
  }
  toBytes(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}
