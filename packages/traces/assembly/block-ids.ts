// Block identities (INV-TRACE-3) in one forward pass over a device's events, compiled to
// WebAssembly: src/block-ids.ts numberEvents does the same in JavaScript, and src/wasm-block-ids.ts
// says when this one runs. A block's id is given at its alloc and carried by its free_requested
// and free_completed, found by address in an open-addressing table of the live blocks.
//
// Memory, laid out by the caller: the action column (u8), the addr column (f64) and the blockId
// column (i32) of n events; the table lives above `heapStart` and moves up when it grows.
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

/** An empty table above `heapStart` (the end of the caller's columns). */
export function reset(heapStart: usize): void {
  heapTop = (heapStart + 15) & ~15;
  allocate(MIN_CAPACITY);
  used = 0;
  live = 0;
}

/** Numbers events [0, n): returns the first that does not fit (see numberEvents), or -1. */
export function number(actionPtr: usize, addrPtr: usize, idPtr: usize, n: i32, firstId: i32): i32 {
  let next = firstId;
  for (let i = 0; i < n; i++) {
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

function insert(addr: f64, id: i32): void {
  if ((used + 1) * 2 > capacity) rehash();
  const mask = capacity - 1;
  for (let i = slotOf(addr, mask); ; i = (i + 1) & mask) {
    const slot = table + <usize>i * SLOT_BYTES;
    const key = load<f64>(slot);
    if (key == EMPTY) {
      store<f64>(slot, addr);
      store<i32>(slot, id, 8);
      used++;
      live++;
      return;
    }
  }
}

/** A fresh table of at least four times the live slots; the old one is abandoned (the heap only grows). */
function rehash(): void {
  const old = table;
  const oldCapacity = capacity;
  let n = MIN_CAPACITY;
  while (n < live * 4) n <<= 1;
  allocate(n);
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
  for (let i = 0; i < n; i++) store<f64>(table + <usize>i * SLOT_BYTES, EMPTY);
}

/** Fibonacci hashing of the address in 512-byte units (block addresses are multiples of 512). */
// @ts-ignore: decorator
@inline function slotOf(addr: f64, mask: i32): i32 {
  return <i32>(((<u64>addr >> 9) * 0x9e3779b97f4a7c15) >> 40) & mask;
}
