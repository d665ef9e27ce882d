import type { LiveBlock, PhysicalMapping, ReservedRange, SegmentLayout } from "./allocator-under-test.js";

/**
 * What every correct allocator guarantees, as pure checks over what a policy reports. Each throws a
 * Violation naming the guarantee (G-*), which the harness tags with the step that broke it.
 *
 *  G-SIZE       a block is at least the requested size, a multiple of 512 bytes, 512-byte aligned.
 *  G-DISJOINT   no two live blocks overlap in virtual addresses.
 *  G-RESERVED   reserved ranges do not overlap, and every live block lies inside them (for
 *               virtual-memory policies G-PHYSICAL says where a live block's memory is instead).
 *  G-TILING     the blocks the policy lists in a reserved range tile it exactly, in address order.
 *  G-PHYSICAL   (virtual-memory policies) every byte of a live block is mapped, and no physical byte
 *               backs two live blocks.
 *  G-STATS      statistics agree with what is live and reserved (see checkStats).
 *  G-VALID      the policy's own isValid() holds after every step.
 *  G-MODEL      the policy's live blocks are exactly the ones the caller holds.
 *  G-CAPACITY   reserved memory never grows past the limit.
 *  G-OOM        with no limit, or nothing live and room for the request, malloc succeeds.
 *  G-STREAM     memory freed by one stream is not handed to another stream unless it went back to
 *               the device in between.
 *  G-RELEASE    after empty_cache, every reserved range holds part of a live block (for
 *               virtual-memory policies: or a physical chunk that a live block is mapped to).
 *  G-DETERMINISM the same program gives the same addresses and statistics every time.
 */
export class Violation extends Error {
  constructor(
    readonly guarantee: string,
    readonly detail: string,
  ) {
    super(`${guarantee}: ${detail}`);
  }
}

export const ALIGNMENT_BYTES = 512;

export function fail(guarantee: string, detail: string): never {
  throw new Violation(guarantee, detail);
}

const hex = (n: number) => `0x${n.toString(16)}`;

export function checkBlockShape(b: { address: number; sizeBytes: number }, requestedBytes: number): void {
  if (!(b.sizeBytes >= requestedBytes)) fail("G-SIZE", `block of ${b.sizeBytes} B for a request of ${requestedBytes} B`);
  if (b.sizeBytes % ALIGNMENT_BYTES !== 0) fail("G-SIZE", `block size ${b.sizeBytes} B is not a multiple of ${ALIGNMENT_BYTES}`);
  if (b.address % ALIGNMENT_BYTES !== 0 || b.address <= 0) fail("G-SIZE", `block address ${hex(b.address)} is not ${ALIGNMENT_BYTES}-byte aligned`);
}

export function checkDisjoint(blocks: readonly LiveBlock[]): void {
  const sorted = [...blocks].sort((a, b) => a.address - b.address);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1];
    const c = sorted[i];
    if (p.address + p.sizeBytes > c.address) {
      fail("G-DISJOINT", `live blocks [${hex(p.address)}, +${p.sizeBytes}) and [${hex(c.address)}, +${c.sizeBytes}) overlap`);
    }
  }
}

export function checkReserved(ranges: readonly ReservedRange[], blocks: readonly LiveBlock[], containment = true): void {
  const sorted = [...ranges].sort((a, b) => a.address - b.address);
  for (const r of sorted) if (r.sizeBytes <= 0) fail("G-RESERVED", `reserved range at ${hex(r.address)} of ${r.sizeBytes} B`);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1];
    if (p.address + p.sizeBytes > sorted[i].address) fail("G-RESERVED", `reserved ranges at ${hex(p.address)} and ${hex(sorted[i].address)} overlap`);
  }
  if (!containment) return;
  for (const b of blocks) {
    if (uncovered(sorted, b.address, b.sizeBytes) !== null) {
      fail("G-RESERVED", `live block [${hex(b.address)}, +${b.sizeBytes}) is not inside reserved memory`);
    }
  }
}

/** G-TILING: each range's blocks start at its base, follow each other with no gap, and end at its end. */
export function checkTiling(layout: readonly SegmentLayout[]): void {
  for (const seg of layout) {
    let at = seg.address;
    for (const b of seg.blocks) {
      if (b.sizeBytes <= 0) fail("G-TILING", `in the range at ${hex(seg.address)}, a block of ${b.sizeBytes} B at ${hex(b.address)}`);
      if (b.address !== at) fail("G-TILING", `in the range at ${hex(seg.address)}, a block starts at ${hex(b.address)}, expected ${hex(at)}`);
      at += b.sizeBytes;
    }
    if (at !== seg.address + seg.sizeBytes) {
      fail("G-TILING", `the blocks of the range [${hex(seg.address)}, +${seg.sizeBytes}) cover ${at - seg.address} B of it`);
    }
  }
}

/** the first byte of [address, address + size) that no range covers, or null; ranges sorted, disjoint */
function uncovered(sorted: readonly { address: number; sizeBytes: number }[], address: number, sizeBytes: number): number | null {
  let at = address;
  const end = address + sizeBytes;
  let i = lowerBound(sorted, at);
  while (at < end) {
    const r = sorted[i];
    if (!r || r.address > at || r.address + r.sizeBytes <= at) return at;
    at = r.address + r.sizeBytes;
    i++;
  }
  return null;
}

/** index of the last range starting at or before `at` (0 when none) */
function lowerBound(sorted: readonly { address: number }[], at: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid].address <= at) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** G-PHYSICAL: live blocks are fully mapped and share no physical byte. */
export function checkPhysical(mappings: readonly PhysicalMapping[], blocks: readonly LiveBlock[]): void {
  const sorted = [...mappings].sort((a, b) => a.address - b.address);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1];
    if (p.address + p.sizeBytes > sorted[i].address) fail("G-PHYSICAL", `mappings at ${hex(p.address)} and ${hex(sorted[i].address)} overlap in virtual addresses`);
  }
  const pieces: { chunk: number; offset: number; sizeBytes: number; block: number }[] = [];
  for (const b of blocks) {
    const hole = uncovered(sorted, b.address, b.sizeBytes);
    if (hole !== null) fail("G-PHYSICAL", `live block [${hex(b.address)}, +${b.sizeBytes}) has no physical memory at ${hex(hole)}`);
    const end = b.address + b.sizeBytes;
    for (let i = lowerBound(sorted, b.address); i < sorted.length && sorted[i].address < end; i++) {
      const m = sorted[i];
      const from = Math.max(m.address, b.address);
      const to = Math.min(m.address + m.sizeBytes, end);
      if (to > from) pieces.push({ chunk: m.chunk, offset: m.chunkOffset + (from - m.address), sizeBytes: to - from, block: b.address });
    }
  }
  pieces.sort((a, b) => a.chunk - b.chunk || a.offset - b.offset);
  for (let i = 1; i < pieces.length; i++) {
    const p = pieces[i - 1];
    const c = pieces[i];
    if (p.chunk === c.chunk && p.offset + p.sizeBytes > c.offset) {
      fail("G-PHYSICAL", `live blocks at ${hex(p.block)} and ${hex(c.block)} share bytes of physical chunk ${p.chunk} at offset ${c.offset}`);
    }
  }
}

/**
 * G-RELEASE: after empty_cache no reserved range is entirely free. Live blocks must be disjoint. With
 * `mappings` (virtual-memory policies), a range also counts as used when one of its chunks is mapped
 * under a live block elsewhere (a vms segment whose pieces serve a stitched block).
 */
export function checkReleased(ranges: readonly ReservedRange[], blocks: readonly LiveBlock[], mappings?: readonly PhysicalMapping[]): void {
  const sorted = [...blocks].sort((a, b) => a.address - b.address);
  const liveChunks = new Set<number>();
  const byAddress = mappings ? [...mappings].sort((a, b) => a.address - b.address) : [];
  const overlapsLive = (address: number, sizeBytes: number) => {
    // blocks are disjoint, so only the last block starting before the end can touch the range
    const b = sorted[lowerBound(sorted, address + sizeBytes - 1)];
    return b !== undefined && b.address < address + sizeBytes && b.address + b.sizeBytes > address;
  };
  for (const m of byAddress) if (overlapsLive(m.address, m.sizeBytes)) liveChunks.add(m.chunk);
  for (const r of ranges) {
    if (overlapsLive(r.address, r.sizeBytes)) continue;
    const end = r.address + r.sizeBytes;
    let backsLive = false;
    for (let i = lowerBound(byAddress, r.address); i < byAddress.length && byAddress[i].address < end && !backsLive; i++) {
      const m = byAddress[i];
      backsLive = m.address + m.sizeBytes > r.address && liveChunks.has(m.chunk);
    }
    if (!backsLive) fail("G-RELEASE", `after empty_cache the reserved range [${hex(r.address)}, +${r.sizeBytes}) holds no live block`);
  }
}
