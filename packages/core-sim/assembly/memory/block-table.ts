// The block table: every Block record of every policy in this instance, in one growable region of
// linear memory, named by a small integer id. A policy links records by id (prev/next neighbours in
// a segment, left/right children in a free-set tree), never by pointer, so the region can move
// when it grows.
//
// One record (RECORD_BYTES = 80):
//
//    0 ┌───────────────────────────────┬───────────────────────────────┐
//      │ addr: u64 (first byte of the block on the device)             │
//    8 ├───────────────────────────────────────────────────────────────┤
//      │ size: u64 (bytes, a multiple of 512)                          │
//   16 ├───────────────────────────────────────────────────────────────┤
//      │ requested: u64 (the caller's unrounded request; stale when    │
//      │                 the block is free, as in PyTorch)             │
//   24 ├───────────────────────────────────────────────────────────────┤
//      │ gcBase: i64 (the pool's gc clock when the block was cached)   │
//   32 ├───────────────────────────────┬───────────────────────────────┤
//      │ prev: i32 (-1: segment start) │ next: i32 (-1: segment end)   │
//   40 ├───────────────────────────────┼───────────────────────────────┤
//      │ left: i32  (free-set tree)    │ right: i32 (free-set tree)    │
//   48 ├───────────────────────────────┼───────────────────────────────┤
//      │ priority: u32 (tree heap key) │ stream: i32 (stream index)    │
//   56 ├───────────────────────────────┼───────────────────────────────┤
//      │ segment: i32 (expandable      │ traceId: i32 (the trace's     │
//      │   segment id, -1: cudaMalloc) │   allocation id, -1: none)    │
//   64 ├───────────────────────────────┼───────────────────────────────┤
//      │ flags: u32 (FLAG_*)           │ nextFree: i32 (unused records)│
//   72 ├───────────────────────────────┼───────────────────────────────┤
//      │ owner: i32 (the policy's own   │ spare: u32                    │
//      │   structure id, e.g. the VMS   │                               │
//      │   segment or stitch; -1: none) │                               │
//   80 └───────────────────────────────────────────────────────────────┘
//
// Stream indices are ordered like PyTorch's cudaStream_t pointers (the trace model sorts its stream
// table by raw value), so comparing indices compares pointers.
//
// Every setter of a record's place, size, links, flags or owner notes the record in
// changed-blocks.ts, for the local level of the policies' invariant checks.

import { noteChanged } from "./changed-blocks";

export const RECORD_BYTES: usize = 80;
export const NO_BLOCK: i32 = -1;

/** handed out to a caller (PyTorch: Block::allocated) */
export const FLAG_ALLOCATED: u32 = 1;
/** backed by physical memory (always set outside expandable segments) */
export const FLAG_MAPPED: u32 = 2;
/** belongs to the small pool */
export const FLAG_SMALL: u32 = 4;
/** freed by the caller, still waiting on stream events (PyTorch: event_count > 0) */
export const FLAG_PENDING: u32 = 8;
/** currently a member of a free-set tree */
export const FLAG_IN_TREE: u32 = 16;
/** the record is in use */
export const FLAG_LIVE: u32 = 32;
/** belongs to the vms policy's large pool (vms.ts), not to the caching allocator's pools */
export const FLAG_VMS: u32 = 64;
/** a vms stitched view (sBlock): its own virtual range over chunks that pBlocks own */
export const FLAG_STITCHED: u32 = 128;
/** a vms pBlock whose chunks are the used prefix of a stitched view ("lent" to it) */
export const FLAG_LENT: u32 = 256;

const OFF_ADDR: usize = 0;
const OFF_SIZE: usize = 8;
const OFF_REQUESTED: usize = 16;
const OFF_GC_BASE: usize = 24;
const OFF_PREV: usize = 32;
const OFF_NEXT: usize = 36;
const OFF_LEFT: usize = 40;
const OFF_RIGHT: usize = 44;
const OFF_PRIORITY: usize = 48;
const OFF_STREAM: usize = 52;
const OFF_SEGMENT: usize = 56;
const OFF_TRACE_ID: usize = 60;
const OFF_FLAGS: usize = 64;
const OFF_NEXT_FREE: usize = 68;
const OFF_OWNER: usize = 72;

let tableBase: usize = 0;
let tableCapacity: i32 = 0;
let tableUsed: i32 = 0; // records ever handed out (ids below this may be live)
let freeHead: i32 = NO_BLOCK;
let liveRecords: i32 = 0;
let prioritySeed: u32 = 0x9e3779b9;

@inline function rec(id: i32): usize {
  return tableBase + <usize>id * RECORD_BYTES;
}

@inline export function bAddr(id: i32): u64 { return load<u64>(rec(id), OFF_ADDR); }
@inline export function setAddr(id: i32, v: u64): void { store<u64>(rec(id), v, OFF_ADDR); noteChanged(id); }
@inline export function bSize(id: i32): u64 { return load<u64>(rec(id), OFF_SIZE); }
@inline export function setSize(id: i32, v: u64): void { store<u64>(rec(id), v, OFF_SIZE); noteChanged(id); }
@inline export function bRequested(id: i32): u64 { return load<u64>(rec(id), OFF_REQUESTED); }
@inline export function setRequested(id: i32, v: u64): void { store<u64>(rec(id), v, OFF_REQUESTED); }
@inline export function bGcBase(id: i32): i64 { return load<i64>(rec(id), OFF_GC_BASE); }
@inline export function setGcBase(id: i32, v: i64): void { store<i64>(rec(id), v, OFF_GC_BASE); }
@inline export function bPrev(id: i32): i32 { return load<i32>(rec(id), OFF_PREV); }
@inline export function setPrev(id: i32, v: i32): void { store<i32>(rec(id), v, OFF_PREV); noteChanged(id); }
@inline export function bNext(id: i32): i32 { return load<i32>(rec(id), OFF_NEXT); }
@inline export function setNext(id: i32, v: i32): void { store<i32>(rec(id), v, OFF_NEXT); noteChanged(id); }
@inline export function bLeft(id: i32): i32 { return load<i32>(rec(id), OFF_LEFT); }
@inline export function setLeft(id: i32, v: i32): void { store<i32>(rec(id), v, OFF_LEFT); }
@inline export function bRight(id: i32): i32 { return load<i32>(rec(id), OFF_RIGHT); }
@inline export function setRight(id: i32, v: i32): void { store<i32>(rec(id), v, OFF_RIGHT); }
@inline export function bPriority(id: i32): u32 { return load<u32>(rec(id), OFF_PRIORITY); }
@inline export function bStream(id: i32): i32 { return load<i32>(rec(id), OFF_STREAM); }
@inline export function bSegment(id: i32): i32 { return load<i32>(rec(id), OFF_SEGMENT); }
@inline export function bTraceId(id: i32): i32 { return load<i32>(rec(id), OFF_TRACE_ID); }
@inline export function setTraceId(id: i32, v: i32): void { store<i32>(rec(id), v, OFF_TRACE_ID); }
@inline export function bOwner(id: i32): i32 { return load<i32>(rec(id), OFF_OWNER); }
@inline export function setOwner(id: i32, v: i32): void { store<i32>(rec(id), v, OFF_OWNER); noteChanged(id); }
@inline export function bFlags(id: i32): u32 { return load<u32>(rec(id), OFF_FLAGS); }
@inline export function hasFlag(id: i32, flag: u32): bool { return (bFlags(id) & flag) != 0; }
@inline export function setFlag(id: i32, flag: u32, on: bool): void {
  const f = bFlags(id);
  store<u32>(rec(id), on ? f | flag : f & ~flag, OFF_FLAGS);
  noteChanged(id);
}

/** PyTorch's Block::is_split: it has a neighbour in its segment. */
@inline export function isSplit(id: i32): bool {
  return bPrev(id) != NO_BLOCK || bNext(id) != NO_BLOCK;
}
@inline export function bEnd(id: i32): u64 { return bAddr(id) + bSize(id); }
@inline export function isExpandable(id: i32): bool { return bSegment(id) >= 0; }

/** A fresh record: free, mapped, unlinked, not in any tree. */
export function newBlock(addr: u64, size: u64, stream: i32, small: bool, segment: i32): i32 {
  let id = freeHead;
  if (id != NO_BLOCK) {
    freeHead = load<i32>(rec(id), OFF_NEXT_FREE);
  } else {
    if (tableUsed == tableCapacity) growTable();
    id = tableUsed++;
  }
  const p = rec(id);
  memory.fill(p, 0, RECORD_BYTES);
  store<u64>(p, addr, OFF_ADDR);
  store<u64>(p, size, OFF_SIZE);
  store<i32>(p, NO_BLOCK, OFF_PREV);
  store<i32>(p, NO_BLOCK, OFF_NEXT);
  store<i32>(p, NO_BLOCK, OFF_LEFT);
  store<i32>(p, NO_BLOCK, OFF_RIGHT);
  // xorshift32: a fixed seed, so every replay builds the same trees
  let x = prioritySeed;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  prioritySeed = x;
  store<u32>(p, x, OFF_PRIORITY);
  store<i32>(p, stream, OFF_STREAM);
  store<i32>(p, segment, OFF_SEGMENT);
  store<i32>(p, -1, OFF_TRACE_ID);
  store<i32>(p, -1, OFF_OWNER);
  store<u32>(p, FLAG_LIVE | FLAG_MAPPED | (small ? FLAG_SMALL : 0), OFF_FLAGS);
  liveRecords++;
  noteChanged(id);
  return id;
}

export function deleteBlock(id: i32): void {
  assert(hasFlag(id, FLAG_LIVE) && !hasFlag(id, FLAG_IN_TREE), "deleting a dead or cached block");
  store<u32>(rec(id), 0, OFF_FLAGS);
  store<i32>(rec(id), freeHead, OFF_NEXT_FREE);
  freeHead = id;
  liveRecords--;
  noteChanged(id);
}

/** Ids below this bound may name live records (walk them with isLive). */
export function blockIdBound(): i32 { return tableUsed; }
export function isLive(id: i32): bool { return (bFlags(id) & FLAG_LIVE) != 0; }
export function liveBlockCount(): i32 { return liveRecords; }

function growTable(): void {
  const capacity = tableCapacity == 0 ? 1024 : tableCapacity * 2;
  const base = heap.alloc(<usize>capacity * RECORD_BYTES);
  if (tableBase != 0) {
    memory.copy(base, tableBase, <usize>tableCapacity * RECORD_BYTES);
    heap.free(tableBase);
  }
  tableBase = base;
  tableCapacity = capacity;
}
