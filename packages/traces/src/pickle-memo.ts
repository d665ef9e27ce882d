/**
 * The pickle memo: values stored by MEMOIZE / BINPUT and fetched by BINGET, shared across the whole
 * file. Kept in pages of PAGE values, each a preallocated array small enough for V8 to keep in fast
 * mode: a snapshot memoizes two values per trace entry, and one 600k-value array grew slowly.
 *
 * Part of the memo may live elsewhere: the WebAssembly entry scanner (entry-scanner.ts) memoizes
 * the values of the entries it decodes in its own records, and `extendTo` lets the memo count them
 * without copying; `resolve` hands such a value over the first time it is fetched.
 *
 * Invariant: every index below `length` either has its value in a page, or is one `resolve` answers
 * for, or was never stored; undefined, which no pickle value is, means "never stored".
 */
const PAGE_BITS = 12;
const PAGE = 1 << PAGE_BITS;

export class PickleMemo {
  private readonly pages: unknown[][] = [];
  length = 0;
  /** The value kept outside the pages at `index`, or undefined; consulted for indices with no page value. */
  resolve: ((index: number) => unknown) | undefined = undefined;
  /** While not undefined, indices below `length` stored again (BINPUT over a value) are noted here. */
  overwritten: number[] | undefined = undefined;

  push(value: unknown): void {
    this.store(this.length, value);
  }

  /** The caller bounds `index` (BINPUT indices are checked against the input size). */
  set(index: number, value: unknown): void {
    if (index < this.length && this.overwritten !== undefined) this.overwritten.push(index);
    this.store(index, value);
  }

  /** The value at `index`, or undefined when none was stored there. */
  get(index: number): unknown {
    if (index >= this.length) return undefined;
    const value = this.stored(index);
    if (value !== undefined || this.resolve === undefined) return value;
    const resolved = this.resolve(index);
    if (resolved !== undefined) this.store(index, resolved);
    return resolved;
  }

  /**
   * Stores `value` at `index` in the pages, for a value that was until now `resolve`'s (the entry
   * scanner hands its strings over before the input bytes they point to go): not noted as overwritten.
   */
  keep(index: number, value: unknown): void {
    this.store(index, value);
  }

  /** The value in the pages at `index` (what `resolve` answers for is not looked at). */
  stored(index: number): unknown {
    const page = this.pages[index >>> PAGE_BITS];
    return page === undefined ? undefined : page[index & (PAGE - 1)];
  }

  /** The memo now holds `length` values; those without a page value are `resolve`'s. */
  extendTo(length: number): void {
    if (length > this.length) this.length = length;
  }

  private store(index: number, value: unknown): void {
    const page = index >>> PAGE_BITS;
    while (this.pages.length <= page) this.pages.push(new Array(PAGE));
    this.pages[page][index & (PAGE - 1)] = value;
    if (index >= this.length) this.length = index + 1;
  }
}
