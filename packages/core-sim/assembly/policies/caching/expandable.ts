// Expandable segments, the caching allocator's expandable_segments:True mode [A12]: one growing
// virtual range per (stream, pool) instead of one cudaMalloc per segment.
//
// Inside a segment, blocks tile the whole reservation; the unmapped ranges are blocks too (not
// mapped, kept in the pool's `unmapped` set), so a fresh segment is one giant unmapped block:
//
//   ┌──────────────┬──────────┬───────────┬──────────────────────── ··· ─┐
//   │ allocated    │ free     │ allocated │ unmapped                      │
//   │ (mapped)     │ (mapped) │ (mapped)  │ (in pool.unmapped)            │
//   └──────────────┴──────────┴───────────┴──────────────────────── ··· ─┘
//    <------------- one snapshot segment -------------> (each contiguous mapped range)
//
// Growth maps whole pages (2 MiB small, 20 MiB large) at the lowest address that can take the
// request; pages stay mapped when blocks are freed and are unmapped only by release_blocks.

import {
  NO_BLOCK, FLAG_ALLOCATED, FLAG_MAPPED, FLAG_PENDING, newBlock, deleteBlock, bAddr, bSize,
  setAddr, setSize, bPrev, bNext, setPrev, setNext, bStream, bSegment, hasFlag, setFlag,
} from "../../memory/block-table";
import { STAT_RESERVED_BYTES, NUM_DEVICE_ALLOC, NUM_DEVICE_FREE } from "../stats";
import { SMALL_BUFFER_BYTES } from "../rounding";
import { BlockPool } from "./block-pool";
import { ExpandableSegment } from "./expandable-segment";
import { CachingAllocator, expandableAddressSpace } from "./caching";
import { ACTION_SEGMENT_MAP, ACTION_SEGMENT_UNMAP } from "../../replay/segment-log";

/** The page size of the pool's expandable segments. */
export function pageBytesOf(a: CachingAllocator, small: bool): u64 {
  return small ? SMALL_BUFFER_BYTES : a.conf.largeSegmentBytes;
}

/** free, not pending: can become part of a new allocation (the `allocatable` test) */
@inline function allocatable(b: i32): bool {
  return b != NO_BLOCK && !hasFlag(b, FLAG_ALLOCATED) && !hasFlag(b, FLAG_PENDING);
}

/** Do the allocatable blocks from b onward add up to `size`? */
function hasAddressSpace(b: i32, size: u64): bool {
  let bytes: u64 = 0;
  let at = b;
  while (bytes < size && allocatable(at)) {
    bytes += bSize(at);
    at = bNext(at);
  }
  return bytes >= size;
}

/**
 * find_expandable_block: the lowest-addressed place in this stream's segments of the pool where a
 * run of free and unmapped blocks can hold `size` (starting at a free block right before an
 * unmapped one, if there is one); else a new segment, as one unmapped block. NO_BLOCK when the
 * device has no address space left.
 */
export function findExpandableBlock(a: CachingAllocator, pool: BlockPool, stream: i32, size: u64): i32 {
  for (let it = pool.lowerBoundUnmapped(stream, 0); it != NO_BLOCK && bStream(it) == stream; it = pool.nextUnmapped(it)) {
    let c = it;
    if (allocatable(bPrev(c))) c = bPrev(c);
    if (hasAddressSpace(c, size)) return c;
  }
  const id = a.segments.length;
  const es = new ExpandableSegment(id, stream, pool.small, pageBytesOf(a, pool.small), expandableAddressSpace(a.device.totalBytes()));
  if (!es.reserve(a.device)) return NO_BLOCK;
  a.segments.push(es);
  const candidate = newBlock(es.base, es.vaBytes(), stream, pool.small, id);
  setFlag(candidate, FLAG_MAPPED, false);
  pool.insertUnmapped(candidate);
  return candidate;
}

/**
 * map_block: maps the pages covering the first `size` bytes of the unmapped block, splits off the
 * unmapped rest, merges with free mapped neighbours and caches the result. False when the device
 * is out of physical memory.
 */
export function mapBlock(a: CachingAllocator, pool: BlockPool, toMap: i32, size: u64): bool {
  const es = a.segment(bSegment(toMap));
  const mapped = es.map(a.device, bAddr(toMap), size);
  if (mapped == 0) return false;
  pool.eraseUnmapped(toMap);
  setFlag(toMap, FLAG_MAPPED, true);
  if (mapped < bSize(toMap)) {
    const remaining = newBlock(bAddr(toMap) + mapped, bSize(toMap) - mapped, bStream(toMap), pool.small, es.id);
    setFlag(remaining, FLAG_MAPPED, false);
    const after = bNext(toMap);
    setPrev(remaining, toMap);
    setNext(remaining, after);
    if (after != NO_BLOCK) setPrev(after, remaining);
    setNext(toMap, remaining);
    pool.insertUnmapped(remaining);
    setSize(toMap, mapped);
  }
  const start = bAddr(toMap);
  a.tryMerge(toMap, bPrev(toMap), pool);
  a.tryMerge(toMap, bNext(toMap), pool);
  pool.insertFree(toMap);
  a.totalAllocatedBytes += mapped;
  a.stats.increase(STAT_RESERVED_BYTES, pool.small, mapped);
  a.stats.count(NUM_DEVICE_ALLOC);
  a.log.record(ACTION_SEGMENT_MAP, start, mapped);
  return true;
}

/**
 * try_allocate_expandable_block: finds room, maps what is missing, and returns the free block
 * (out of the free set) that holds `size`; NO_BLOCK when the device refuses.
 */
export function tryAllocateExpandableBlock(a: CachingAllocator, pool: BlockPool, stream: i32, size: u64): i32 {
  let candidate = findExpandableBlock(a, pool, stream, size);
  if (candidate == NO_BLOCK) return NO_BLOCK;
  // candidate: unmapped -> end, unmapped -> free -> ..., or free -> unmapped -> ...
  if (!hasFlag(candidate, FLAG_MAPPED) && !mapBlock(a, pool, candidate, min(bSize(candidate), size))) {
    return NO_BLOCK;
  }
  while (bSize(candidate) < size) {
    // candidate is free and mapped, followed by an unmapped block: map into it (which merges)
    const remaining = size - bSize(candidate);
    const next = bNext(candidate);
    if (!mapBlock(a, pool, next, min(remaining, bSize(next)))) return NO_BLOCK;
    candidate = next;
  }
  pool.eraseFree(candidate);
  return candidate;
}

/** Would the expandable path find room for `size` without the device running out? */
export function expandableWouldFit(a: CachingAllocator, pool: BlockPool, stream: i32, size: u64): bool {
  const page = pageBytesOf(a, pool.small);
  return a.device.canAllocate(((size + page - 1) / page) * page);
}

/**
 * unmap_block: unmaps the whole pages inside a cached expandable block; the partial pages at its
 * ends stay mapped as free blocks of their own.
 */
export function unmapBlock(a: CachingAllocator, pool: BlockPool, b: i32): void {
  const es = a.segment(bSegment(b));
  es.unmap(a.device, bAddr(b), bSize(b));
  const unmappedStart = es.unmappedStart;
  const unmappedBytes = es.unmappedBytes;
  if (unmappedBytes == 0) return;
  pool.eraseFree(b);
  const beforeBytes = unmappedStart - bAddr(b);
  if (beforeBytes > 0) {
    // prev? -> beforeFree -> b
    const beforeFree = newBlock(bAddr(b), beforeBytes, bStream(b), pool.small, es.id);
    const p = bPrev(b);
    setPrev(beforeFree, p);
    if (p != NO_BLOCK) setNext(p, beforeFree);
    setNext(beforeFree, b);
    setPrev(b, beforeFree);
    pool.insertFree(beforeFree);
  }
  const afterBytes = bSize(b) - (beforeBytes + unmappedBytes);
  if (afterBytes > 0) {
    // b -> afterFree -> next?
    const afterFree = newBlock(unmappedStart + unmappedBytes, afterBytes, bStream(b), pool.small, es.id);
    const n = bNext(b);
    setNext(afterFree, n);
    if (n != NO_BLOCK) setPrev(n, afterFree);
    setPrev(afterFree, b);
    setNext(b, afterFree);
    pool.insertFree(afterFree);
  }
  setAddr(b, unmappedStart);
  setSize(b, unmappedBytes);
  setFlag(b, FLAG_MAPPED, false);
  a.tryMerge(b, bPrev(b), pool);
  a.tryMerge(b, bNext(b), pool);
  pool.insertUnmapped(b);
  a.totalAllocatedBytes -= unmappedBytes;
  a.stats.decrease(STAT_RESERVED_BYTES, pool.small, unmappedBytes);
  a.stats.count(NUM_DEVICE_FREE);
  a.log.record(ACTION_SEGMENT_UNMAP, unmappedStart, unmappedBytes);
}

/** release_expandable_segment: a segment left as one unmapped block gives its reservation back. */
export function releaseExpandableSegment(a: CachingAllocator, pool: BlockPool, b: i32): void {
  if (hasFlag(b, FLAG_MAPPED)) return;
  const es = a.segment(bSegment(b));
  assert(bAddr(b) == es.base && bSize(b) == es.vaBytes(), "block disagrees with its segment");
  pool.eraseUnmapped(b);
  es.release(a.device);
  a.segments[es.id] = null;
  deleteBlock(b);
}
