// Block identities (INV-TRACE-3) in one forward pass over a device's events, compiled to
// WebAssembly: src/block-ids.ts numberEvents does the same in JavaScript, and src/wasm-block-ids.ts
// says when this one runs. A block's id is given at its alloc and carried by its free_requested
// and free_completed, found by address in an open-addressing table of the live blocks.
//
// Memory, laid out by the caller: the action column (u8), the addr column (f64) and the blockId
// column (i32) of n events; the table lives above `heapStart`, in one of two regions (see rehash).
//
// Table invariants: capacity is a power of two and at least twice the live and deleted slots
// (probing ends); a slot's key is an address (>= 0), EMPTY or DELETED.

const EMPTY: f64 = -1;
const DELETED: f64 = -2;
const SLOT_BYTES: usize = 16; // key f64, value i32, padding
const MIN_CAPACITY: i32 = 1024;

// src/model.ts Action
const ALLOC: u32 = 1;
const FREE_REQUESTED: u32 = 2;
const FREE_COMPLETED: u32 = 3;

let table: usize = 0;
let capacity: i32 = 0;
let used: i32 = 0; // live + deleted
let live: i32 = 0;
let heapTop: usize = 0;
let spare: usize = 0; // the previous table's region, reused by a rehash that keeps the size
let spareCapacity: i32 = 0;

let nextId: i32 = 0;

/** An empty table above `heapStart` (the end of the caller's columns); the first new block gets `firstId`. */
export function reset(heapStart: usize, firstId: i32): void {
  heapTop = (heapStart + 15) & ~15;
  spare = 0;
  spareCapacity = 0;
  allocate(MIN_CAPACITY);
  used = 0;
  live = 0;
  nextId = firstId;
}

/**
 * Numbers events [from, to): returns the first that does not fit (see numberEvents), or -1. The
 * caller goes through the events a slice per call: V8 runs a call in the code it started with, and
 * the optimized code it compiles meanwhile serves the next call.
 */
export function number(actionPtr: usize, addrPtr: usize, idPtr: usize, from: i32, to: i32): i32 {
  let next = nextId;
  for (let i = from; i < to; i++) {
    const a = <u32>load<u8>(actionPtr + <usize>i);
    const addr = load<f64>(addrPtr + (<usize>i << 3));
    let id: i32 = -1;
    if (a == ALLOC) {
      if (find(addr) != 0) return i;
      id = next++;
      insert(addr, id);
    } else if (a == FREE_REQUESTED) {
      const slot = find(addr);
      if (slot == 0) return i;
      id = load<i32>(slot, 8);
    } else if (a == FREE_COMPLETED) {
      const slot = find(addr);
      if (slot == 0) return i;
      id = load<i32>(slot, 8);
      store<f64>(slot, DELETED);
      live--;
    }
    store<i32>(idPtr + (<usize>i << 2), id);
  }
  nextId = next;
  return -1;
}

/** Adds a block live at the start (the caller gives each address once). */
export function addLive(addr: f64, id: i32): void {
  insert(addr, id);
}

export function liveCount(): i32 {
  return live;
}

/** Writes the live blocks as (addr f64, id f64) pairs at `out`. */
export function writeLive(out: usize): void {
  let k: usize = 0;
  for (let i = 0; i < capacity; i++) {
    const slot = table + <usize>i * SLOT_BYTES;
    const key = load<f64>(slot);
    if (key >= 0) {
      store<f64>(out + (k << 4), key);
      store<f64>(out + (k << 4) + 8, <f64>load<i32>(slot, 8));
      k++;
    }
  }
}

/** The slot holding `addr`, or 0. */
function find(addr: f64): usize {
  const mask = capacity - 1;
  for (let i = slotOf(addr, mask); ; i = (i + 1) & mask) {
    const slot = table + <usize>i * SLOT_BYTES;
    const key = load<f64>(slot);
    if (key == addr) return slot;
    if (key == EMPTY) return 0;
  }
  return 0; // not reached
}

/**
 * Adds `addr` (not in the table). It takes the first deleted slot on its probe path when there is
 * one: the caching allocator hands the same addresses out again and again, and a table that left
 * each one's old slot deleted and went on to the next empty one grew runs of deleted slots that
 * every later probe had to walk.
 */
function insert(addr: f64, id: i32): void {
  if ((used + 1) * 2 > capacity) rehash();
  const mask = capacity - 1;
  let reuse: usize = 0;
  for (let i = slotOf(addr, mask); ; i = (i + 1) & mask) {
    const slot = table + <usize>i * SLOT_BYTES;
    const key = load<f64>(slot);
    if (key == DELETED && reuse == 0) reuse = slot;
    if (key == EMPTY) {
      if (reuse == 0) used++;
      const at = reuse != 0 ? reuse : slot;
      store<f64>(at, addr);
      store<i32>(at, id, 8);
      live++;
      return;
    }
  }
}

/**
 * A table of at least four times the live slots (and no smaller), without the deleted ones. When it keeps its size
 * (frees made the room, the common case) it is rebuilt in the spare region of that size; a larger
 * one is carved from the heap, and the old region becomes the spare.
 */
function rehash(): void {
  const old = table;
  const oldCapacity = capacity;
  let n = capacity; // it never shrinks: a table that shrank would soon grow again, into new memory
  while (n < live * 4) n <<= 1;
  if (n <= spareCapacity) {
    table = spare;
    capacity = spareCapacity;
    clear();
  } else {
    allocate(n);
  }
  spare = old;
  spareCapacity = oldCapacity;
  used = 0;
  live = 0;
  for (let i = 0; i < oldCapacity; i++) {
    const slot = old + <usize>i * SLOT_BYTES;
    const key = load<f64>(slot);
    if (key >= 0) insert(key, load<i32>(slot, 8));
  }
}

function allocate(n: i32): void {
  table = heapTop;
  capacity = n;
  heapTop += <usize>n * SLOT_BYTES;
  const pages = <i32>((heapTop + 0xffff) >> 16) - memory.size();
  if (pages > 0 && memory.grow(pages) < 0) unreachable();
  clear();
}

function clear(): void {
  for (let i = 0; i < capacity; i++) store<f64>(table + <usize>i * SLOT_BYTES, EMPTY);
}

/**
 * Fibonacci hashing of the address's bits as a double: the multiply carries every bit into the top
 * ones it keeps. (A float-to-integer conversion here, i64.trunc_sat_f64_u, cost more than the whole
 * probe: V8 has no single x64 instruction for it.)
 */
// @ts-ignore: decorator
@inline function slotOf(addr: f64, mask: i32): i32 {
  return <i32>((reinterpret<u64>(addr) * 0x9e3779b97f4a7c15) >> 40) & mask;
}
