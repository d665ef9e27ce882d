// The block records changed since the last invariant check, for the cheap level of isValid (as
// mimalloc has cheap and expensive assertions): each policy's local check (its valid.ts) looks at
// these records, their neighbours and what they cover, instead of walking every record. The
// setters of block-table.ts note every change to a record's place, size, links, flags or owner
// (tree links and priorities are the free set's own, checked by the whole walk).
//
// Off unless a replay or the property harness asks for local checks (setLocalCheck in index.ts):
// then noting a change costs one predictable branch. The log holds LOG_CAPACITY ids; an operation
// that changes more (empty_cache releasing many segments, a trace's adopted start state) marks
// the log overflowed, and the next check walks everything instead.

const LOG_CAPACITY: i32 = 4096;

let tracking: bool = false;
const ids = new StaticArray<i32>(LOG_CAPACITY);
let count: i32 = 0;
/** changes were dropped (or tracking just started): only the whole walk can tell */
let overflowed: bool = true;
// record id -> the check that last listed it (for listing each changed record once)
let listedIn = new StaticArray<i32>(0);
let check: i32 = 0;

/** Starts (or stops) noting changes; what happened before is unknown, so the next check is whole. */
export function trackChanges(on: bool): void {
  tracking = on;
  count = 0;
  overflowed = true;
}

@inline export function noteChanged(id: i32): void {
  if (tracking) {
    if (count < LOG_CAPACITY) unchecked((ids[count++] = id));
    else overflowed = true;
  }
}

/** True when the log cannot say everything that changed since the last check. */
export function changesOverflowed(): bool {
  return overflowed;
}

/**
 * Removes repeated ids from the log (an operation notes a record once per field it sets) and
 * returns how many distinct records changed; read them with changedBlock(i).
 */
export function distinctChanges(): i32 {
  check++;
  let kept = 0;
  for (let i = 0; i < count; i++) {
    const id = unchecked(ids[i]);
    if (id >= listedIn.length) {
      const grown = new StaticArray<i32>(max(id + 1, listedIn.length * 2));
      memory.copy(changetype<usize>(grown), changetype<usize>(listedIn), <usize>listedIn.length << 2);
      listedIn = grown;
    }
    if (unchecked(listedIn[id]) == check) continue;
    unchecked((listedIn[id] = check));
    unchecked((ids[kept++] = id));
  }
  count = kept;
  return kept;
}

@inline export function changedBlock(i: i32): i32 {
  return unchecked(ids[i]);
}

/** Empties the log after a check (the state it describes has been checked). */
export function clearChanges(): void {
  count = 0;
  overflowed = false;
}
