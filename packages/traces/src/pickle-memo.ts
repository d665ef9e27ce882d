/**
 * The pickle memo: values stored by MEMOIZE / BINPUT and fetched by BINGET, shared across the whole
 * file. Kept in pages of PAGE values, each a preallocated array small enough for V8 to keep in fast
 * mode: a snapshot memoizes two values per trace entry, and one 600k-value array grew slowly.
 *
 * Invariant: every index below `length` has a page; holes read as undefined, which no pickle value
 * is, so undefined means "never stored".
 */
const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;

export class PickleMemo {
  private readonly pages: unknown[][] = [];
  length = 0;

  push(value: unknown): void {
    this.set(this.length, value);
  }

  /** The caller bounds `index` (BINPUT indices are checked against the input size). */
  set(index: number, value: unknown): void {
    const page = index >>> PAGE_BITS;
    while (this.pages.length <= page) this.pages.push(new Array(PAGE));
    this.pages[page][index & (PAGE - 1)] = value;
    if (index >= this.length) this.length = index + 1;
  }

  /** The value at `index`, or undefined when none was stored there. */
  get(index: number): unknown {
    return index < this.length ? this.pages[index >>> PAGE_BITS][index & (PAGE - 1)] : undefined;
  }
}
