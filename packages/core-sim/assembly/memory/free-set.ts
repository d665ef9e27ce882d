// An ordered set of blocks: a treap (a binary search tree that is also a heap on random
// priorities, so its expected depth is O(log n)) threaded through the left/right fields of the
// block table. It stands in for PyTorch's std::set<Block*, Comparison>: lower_bound, the next and
// previous member, first and last, insert and erase, each O(log n) expected, none allocating.
//
// Two orders, as in PyTorch's BlockPool:
//   BY_SIZE     (stream, size, address): `blocks`, the cached free blocks; best fit is the
//               lower bound of (stream, request, 0): the smallest fitting block, then the lowest
//               address.
//   BY_ADDRESS  (stream, address): `unmapped`, the unmapped ranges of expandable segments.
// Keys are unique because two live blocks never share an address.
//
// A set is named by its root id; every mutating call returns the new root.

import {
  NO_BLOCK, FLAG_IN_TREE, bAddr, bSize, bStream, bLeft, bRight, setLeft, setRight, bPriority,
  hasFlag, setFlag,
} from "./block-table";

export const BY_SIZE: i32 = 0;
export const BY_ADDRESS: i32 = 1;

/** true when block n orders strictly before the key (stream, size, addr). */
@inline function nodeBefore(order: i32, n: i32, stream: i32, size: u64, addr: u64): bool {
  const s = bStream(n);
  if (s != stream) return s < stream;
  if (order == BY_SIZE) {
    const z = bSize(n);
    if (z != size) return z < size;
  }
  return bAddr(n) < addr;
}

/** true when block n orders strictly after the key. */
@inline function nodeAfter(order: i32, n: i32, stream: i32, size: u64, addr: u64): bool {
  const s = bStream(n);
  if (s != stream) return s > stream;
  if (order == BY_SIZE) {
    const z = bSize(n);
    if (z != size) return z > size;
  }
  return bAddr(n) > addr;
}

// split() returns two roots; recursion hands them back through these two globals.
let splitLess: i32 = NO_BLOCK;
let splitRest: i32 = NO_BLOCK;

/** Splits t into keys before (stream, size, addr) -> splitLess, and the rest -> splitRest. */
function split(order: i32, t: i32, stream: i32, size: u64, addr: u64): void {
  if (t == NO_BLOCK) {
    splitLess = NO_BLOCK;
    splitRest = NO_BLOCK;
    return;
  }
  if (nodeBefore(order, t, stream, size, addr)) {
    split(order, bRight(t), stream, size, addr);
    setRight(t, splitLess);
    splitLess = t;
  } else {
    split(order, bLeft(t), stream, size, addr);
    setLeft(t, splitRest);
    splitRest = t;
  }
}

/** Joins two treaps where every key of a orders before every key of b. */
function merge(a: i32, b: i32): i32 {
  if (a == NO_BLOCK) return b;
  if (b == NO_BLOCK) return a;
  if (bPriority(a) > bPriority(b)) {
    setRight(a, merge(bRight(a), b));
    return a;
  }
  setLeft(b, merge(a, bLeft(b)));
  return b;
}

function insertAt(order: i32, t: i32, n: i32): i32 {
  if (t == NO_BLOCK) return n;
  const stream = bStream(n);
  const size = bSize(n);
  const addr = bAddr(n);
  if (bPriority(n) > bPriority(t)) {
    split(order, t, stream, size, addr);
    setLeft(n, splitLess);
    setRight(n, splitRest);
    return n;
  }
  if (nodeAfter(order, t, stream, size, addr)) setLeft(t, insertAt(order, bLeft(t), n));
  else setRight(t, insertAt(order, bRight(t), n));
  return t;
}

function eraseAt(order: i32, t: i32, n: i32): i32 {
  assert(t != NO_BLOCK, "erasing a block that is not in the set");
  if (t == n) return merge(bLeft(t), bRight(t));
  if (nodeAfter(order, t, bStream(n), bSize(n), bAddr(n))) setLeft(t, eraseAt(order, bLeft(t), n));
  else setRight(t, eraseAt(order, bRight(t), n));
  return t;
}

export function setInsert(order: i32, root: i32, n: i32): i32 {
  assert(!hasFlag(n, FLAG_IN_TREE), "block already in a set");
  setLeft(n, NO_BLOCK);
  setRight(n, NO_BLOCK);
  setFlag(n, FLAG_IN_TREE, true);
  return insertAt(order, root, n);
}

export function setErase(order: i32, root: i32, n: i32): i32 {
  assert(hasFlag(n, FLAG_IN_TREE), "block not in a set");
  setFlag(n, FLAG_IN_TREE, false);
  const r = eraseAt(order, root, n);
  setLeft(n, NO_BLOCK);
  setRight(n, NO_BLOCK);
  return r;
}

/** The first member that does not order before (stream, size, addr), or NO_BLOCK. */
export function lowerBound(order: i32, root: i32, stream: i32, size: u64, addr: u64): i32 {
  let found = NO_BLOCK;
  let t = root;
  while (t != NO_BLOCK) {
    if (nodeBefore(order, t, stream, size, addr)) {
      t = bRight(t);
    } else {
      found = t;
      t = bLeft(t);
    }
  }
  return found;
}

/** The member right after n (n must be a member), or NO_BLOCK. */
export function successor(order: i32, root: i32, n: i32): i32 {
  const stream = bStream(n);
  const size = bSize(n);
  const addr = bAddr(n);
  let found = NO_BLOCK;
  let t = root;
  while (t != NO_BLOCK) {
    if (nodeAfter(order, t, stream, size, addr)) {
      found = t;
      t = bLeft(t);
    } else {
      t = bRight(t);
    }
  }
  return found;
}

/** The member right before n (n must be a member), or NO_BLOCK. */
export function predecessor(order: i32, root: i32, n: i32): i32 {
  const stream = bStream(n);
  const size = bSize(n);
  const addr = bAddr(n);
  let found = NO_BLOCK;
  let t = root;
  while (t != NO_BLOCK) {
    if (nodeBefore(order, t, stream, size, addr)) {
      found = t;
      t = bRight(t);
    } else {
      t = bLeft(t);
    }
  }
  return found;
}

export function first(root: i32): i32 {
  let t = root;
  if (t == NO_BLOCK) return NO_BLOCK;
  while (bLeft(t) != NO_BLOCK) t = bLeft(t);
  return t;
}

export function last(root: i32): i32 {
  let t = root;
  if (t == NO_BLOCK) return NO_BLOCK;
  while (bRight(t) != NO_BLOCK) t = bRight(t);
  return t;
}

/** Members in the subtree (for isValid). */
export function setCount(root: i32): i32 {
  if (root == NO_BLOCK) return 0;
  return 1 + setCount(bLeft(root)) + setCount(bRight(root));
}

// In-order walk state for setWellFormed.
let walkPrevious: i32 = NO_BLOCK;
let walkOrder: i32 = BY_SIZE;

/** True when the set is strictly ordered in-order and heap-ordered on priorities (for isValid). */
export function setWellFormed(order: i32, root: i32): bool {
  walkPrevious = NO_BLOCK;
  walkOrder = order;
  return wellFormedAt(root);
}

function wellFormedAt(t: i32): bool {
  if (t == NO_BLOCK) return true;
  if (!hasFlag(t, FLAG_IN_TREE)) return false;
  const l = bLeft(t);
  const r = bRight(t);
  if (l != NO_BLOCK && bPriority(l) > bPriority(t)) return false;
  if (r != NO_BLOCK && bPriority(r) > bPriority(t)) return false;
  if (!wellFormedAt(l)) return false;
  const p = walkPrevious;
  if (p != NO_BLOCK && !nodeBefore(walkOrder, p, bStream(t), bSize(t), bAddr(t))) return false;
  walkPrevious = t;
  return wellFormedAt(r);
}
