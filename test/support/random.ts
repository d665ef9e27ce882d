/**
 * The tests' one seeded generator outside fast-check (SplitMix32 mixed into xorshift128): the
 * fuzzers' inputs and core-sim's random programs. Input k of a campaign with seed s is the same
 * bytes on every machine and can be rebuilt from (s, k) alone when it fails.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    let x = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next() | 1;
  }

  /** uniform in [0, 2^32) */
  u32(): number {
    const t = this.a ^ (this.a << 11);
    this.a = this.b;
    this.b = this.c;
    this.c = this.d;
    this.d = (this.d ^ (this.d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.d;
  }

  /** uniform integer in [0, n) */
  below(n: number): number {
    if (n <= 0) return 0;
    if (n <= 2 ** 32) return Math.floor((this.u32() / 2 ** 32) * n);
    return Math.floor((this.u32() * 2 ** 21 + (this.u32() >>> 11)) / 2 ** 53 * n);
  }

  /** integer in [lo, hi] */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  /** uniform in [0, 1) */
  unit(): number {
    return this.u32() / 2 ** 32;
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  /** small numbers much more often than large ones: 2^uniform(0, log2 max) */
  skewed(max: number): number {
    return Math.min(max, Math.floor(2 ** (this.u32() / 2 ** 32 * Math.log2(max + 1))) - 1 + this.below(2));
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}
