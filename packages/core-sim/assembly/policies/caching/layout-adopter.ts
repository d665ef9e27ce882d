// The caching allocator rebuilt from a snapshot layout, for a trace recorded mid-run
// (DeviceTrace.initialState): the replay hands over one segment at a time (adoptCachingSegment),
// then its blocks in address order (adoptCachingBlock); adoptCachingDone closes the segment. The
// other direction (writing the layout) is layout-writer.ts.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_MAPPED, FLAG_PENDING, newBlock, deleteBlock, bAddr, bSize, bPrev,
  bNext, setAddr, setSize, setPrev, setNext, setRequested, setTraceId, hasFlag, setFlag, isSplit,
} from "../../memory/block-table";
import {
  STAT_ALLOCATION, STAT_SEGMENT, STAT_ACTIVE, STAT_INACTIVE_SPLIT, STAT_ALLOCATED_BYTES,
  STAT_RESERVED_BYTES, STAT_ACTIVE_BYTES, STAT_INACTIVE_SPLIT_BYTES, STAT_REQUESTED_BYTES,
  SCALAR_OVERSIZE_ALLOCATIONS, SCALAR_OVERSIZE_SEGMENTS,
} from "../stats";
import { CachingAllocator, expandableAddressSpace } from "./caching";
import { ExpandableSegment } from "./expandable-segment";
import { pageBytesOf } from "./expandable";
import { BLOCK_ALLOCATED, BLOCK_INACTIVE } from "../../replay/layout";

// the segment being adopted
let adoptFirst: i32 = NO_BLOCK;
let adoptLast: i32 = NO_BLOCK;
let adoptStart: u64 = 0;
let adoptStream: i32 = 0;
let adoptSmall: bool = false;
let adoptOpen: bool = false;
let adoptSegment: ExpandableSegment | null = null;
/** the unmapped block after the adopted range (expandable), out of its set while adopting */
let adoptTail: i32 = NO_BLOCK;
/** per expandable segment id: its unmapped tail block */
const tails = new Array<i32>();

export function adoptCachingSegment(a: CachingAllocator, address: u64, stream: i32, small: bool, expandable: bool): void {
  adoptCachingDone(a);
  adoptOpen = true;
  adoptFirst = NO_BLOCK;
  adoptLast = NO_BLOCK;
  adoptStart = address;
  adoptStream = stream;
  adoptSmall = small;
  adoptSegment = null;
  adoptTail = NO_BLOCK;
  if (!expandable) return;
  const pool = a.pool(small);
  // the segment of this stream and pool whose reservation holds the address, else a new one
  let es: ExpandableSegment | null = null;
  for (let i = 0; i < a.segments.length; i++) {
    const s = a.segments[i];
    if (s != null && s.stream == stream && s.small == small && address >= s.base && address < s.base + s.vaBytes()) {
      es = s;
      break;
    }
  }
  if (es == null) {
    const fresh = new ExpandableSegment(a.segments.length, stream, small, pageBytesOf(a, small), expandableAddressSpace(a.device.totalBytes()));
    fresh.adopt(a.device, address);
    a.segments.push(fresh);
    const whole = newBlock(fresh.base, fresh.vaBytes(), stream, small, fresh.id);
    setFlag(whole, FLAG_MAPPED, false);
    pool.insertUnmapped(whole);
    tails.push(whole);
    es = fresh;
  }
  adoptSegment = es;
  // cut the tail at the address: [tail .. address) stays unmapped, the new tail starts there
  let tail = tails[es.id];
  pool.eraseUnmapped(tail);
  if (bAddr(tail) < address) {
    const gap = tail;
    const end = bAddr(gap) + bSize(gap);
    setSize(gap, address - bAddr(gap));
    tail = newBlock(address, end - address, stream, small, es.id);
    setFlag(tail, FLAG_MAPPED, false);
    setPrev(tail, gap);
    setNext(gap, tail);
    pool.insertUnmapped(gap);
  }
  adoptTail = tail;
  adoptLast = bPrev(tail);
}

export function adoptCachingBlock(a: CachingAllocator, address: u64, size: u64, requested: u64, state: u8, traceId: i32): i32 {
  assert(adoptOpen, "adoptBlock outside a segment");
  const es = adoptSegment;
  const b = newBlock(address, size, adoptStream, adoptSmall, es != null ? es.id : -1);
  setRequested(b, requested);
  if (adoptLast != NO_BLOCK) {
    setNext(adoptLast, b);
    setPrev(b, adoptLast);
  }
  if (adoptFirst == NO_BLOCK) adoptFirst = b;
  adoptLast = b;
  const small = adoptSmall;
  if (state == BLOCK_INACTIVE) {
    a.pool(small).insertFree(b);
    return NO_BLOCK;
  }
  setTraceId(b, traceId);
  a.stats.increase(STAT_ACTIVE, small, 1);
  a.stats.increase(STAT_ACTIVE_BYTES, small, size);
  a.stats.increase(STAT_REQUESTED_BYTES, small, requested);
  if (state == BLOCK_ALLOCATED) {
    setFlag(b, FLAG_ALLOCATED, true);
    a.stats.increase(STAT_ALLOCATION, small, 1);
    a.stats.increase(STAT_ALLOCATED_BYTES, small, size);
    if (size >= a.conf.maxSplitSizeBytes) a.stats.increaseAt(SCALAR_OVERSIZE_ALLOCATIONS, 1);
  } else {
    setFlag(b, FLAG_PENDING, true);
    a.pendingBlocks++;
  }
  return b;
}

export function adoptCachingDone(a: CachingAllocator): void {
  if (!adoptOpen) return;
  adoptOpen = false;
  if (adoptFirst == NO_BLOCK) return;
  const small = adoptSmall;
  const pool = a.pool(small);
  let bytes: u64 = 0;
  for (let b = adoptFirst; b != NO_BLOCK; b = bNext(b)) {
    if (b == adoptTail) break;
    bytes += bSize(b);
  }
  const es = adoptSegment;
  if (es != null) {
    // link the adopted range before the tail and shrink the tail past it
    const tail = adoptTail;
    setNext(adoptLast, tail);
    setPrev(tail, adoptLast);
    const end = adoptStart + bytes;
    const tailEnd = bAddr(tail) + bSize(tail);
    if (end < tailEnd) {
      setAddr(tail, end);
      setSize(tail, tailEnd - end);
      pool.insertUnmapped(tail);
      tails[es.id] = tail;
    } else {
      setNext(adoptLast, NO_BLOCK);
      deleteBlock(tail);
      tails[es.id] = NO_BLOCK;
    }
    es.adoptMapped(a.device, adoptStart, bytes);
    a.stats.increase(STAT_RESERVED_BYTES, small, bytes);
  } else {
    a.device.adoptMalloc(adoptStart, bytes);
    a.stats.increase(STAT_SEGMENT, small, 1);
    a.stats.increase(STAT_RESERVED_BYTES, small, bytes);
    if (bytes >= a.conf.maxSplitSizeBytes) a.stats.increaseAt(SCALAR_OVERSIZE_SEGMENTS, 1);
    // inactive_split: the free blocks of a segment that also holds other blocks
    for (let b = adoptFirst; b != NO_BLOCK; b = bNext(b)) {
      if (!hasFlag(b, FLAG_ALLOCATED) && !hasFlag(b, FLAG_PENDING) && isSplit(b)) {
        a.stats.increase(STAT_INACTIVE_SPLIT, small, 1);
        a.stats.increase(STAT_INACTIVE_SPLIT_BYTES, small, bSize(b));
      }
    }
  }
  a.totalAllocatedBytes += bytes;
}
