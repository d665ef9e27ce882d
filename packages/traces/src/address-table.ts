/**
 * A hash map from block address to a small non-negative integer, for the per-event passes over a
 * trace (block identities). Addresses are doubles above 2^32, which a JS Map hashes slowly and boxes;
 * this open-addressing table keeps keys in a Float64Array and values in an Int32Array.
 *
 * Invariants: capacity is a power of two and at least twice the number of live keys (so probing
 * ends); an empty slot has key EMPTY; a deleted slot has key DELETED (probing passes over it).
 */

const EMPTY = -1;
const DELETED = -2;
const INITIAL_CAPACITY = 1024;

export class AddressTable {
  private keys = new Float64Array(INITIAL_CAPACITY).fill(EMPTY);
  private values = new Int32Array(INITIAL_CAPACITY);
  private used = 0; // live + deleted slots
  private live = 0;

  get size(): number {
    return this.live;
  }

  /** The value for addr, or -1 when absent. */
  get(addr: number): number {
    const mask = this.keys.length - 1;
    for (let i = slotOf(addr, mask); ; i = (i + 1) & mask) {
      const k = this.keys[i];
      if (k === addr) return this.values[i];
      if (k === EMPTY) return -1;
    }
  }

  /** Sets addr (a non-negative number) to value. */
  set(addr: number, value: number): void {
    if ((this.used + 1) * 2 > this.keys.length) this.rehash();
    const mask = this.keys.length - 1;
    let tomb = -1;
    for (let i = slotOf(addr, mask); ; i = (i + 1) & mask) {
      const k = this.keys[i];
      if (k === addr) {
        this.values[i] = value;
        return;
      }
      if (k === DELETED && tomb < 0) tomb = i;
      if (k === EMPTY) {
        const at = tomb >= 0 ? tomb : i;
        if (tomb < 0) this.used++;
        this.keys[at] = addr;
        this.values[at] = value;
        this.live++;
        return;
      }
    }
  }

  /** Removes addr; returns its value, or -1 when absent. */
  delete(addr: number): number {
    const mask = this.keys.length - 1;
    for (let i = slotOf(addr, mask); ; i = (i + 1) & mask) {
      const k = this.keys[i];
      if (k === addr) {
        this.keys[i] = DELETED;
        this.live--;
        return this.values[i];
      }
      if (k === EMPTY) return -1;
    }
  }

  private rehash(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    let capacity = INITIAL_CAPACITY;
    while (capacity < this.live * 4) capacity *= 2;
    this.keys = new Float64Array(capacity).fill(EMPTY);
    this.values = new Int32Array(capacity);
    this.used = 0;
    this.live = 0;
    for (let i = 0; i < oldKeys.length; i++) if (oldKeys[i] >= 0) this.set(oldKeys[i], oldValues[i]);
  }
}

/**
 * Block addresses are multiples of 512 below 2^53. The hash splits addr / 512 into two parts that
 * fit int32 using float arithmetic only: `| 0` on a double beyond 2^31 takes V8's slow path.
 */
function slotOf(addr: number, mask: number): number {
  const units = addr / 512;
  const high = Math.floor(units / 65536);
  const low = units - high * 65536;
  const h = Math.imul(low ^ Math.imul(high | 0, 0x9e3779b1), 0x85ebca6b);
  return (h ^ (h >>> 15)) & mask;
}
