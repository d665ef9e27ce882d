// Simulated time per driver call: the figures DESIGN.md measured on an NVIDIA H100 80GB (driver
// 580, CUDA 13), one call at a time, and the per-mapping cost of cuMemSetAccess and cuMemUnmap
// measured inside live replays on an H100 (packages/native-cuda/bench/results-h100.md, run 4).
// This file is the only copy of that table.
//
// setAccess and unmap are charged per mapping: the driver's work in them is per mapping of the
// range, so one call over N mappings costs about N calls over one. The live replays measured it:
// over lakebed's gpt2_ckpt replay, 670 setAccess calls over 49,696 2 MiB mappings took 1,439 ms
// (29.0 us a mapping; one call over one 2 MiB mapping takes 25-31 us) and 1,273 unmaps of 38,078
// mappings 803 ms (21.1 us a mapping); vms's 100 setAccess calls over 13,719 mappings 29.5 us a
// mapping; expandable segments' 129 calls over 558 20 MiB mappings 26.5 us a mapping; one unmap
// of a range of 32 chunks 500-700 us. Charged per call, as the table below once was, lakebed's
// gpt2_ckpt replay came to 0.30 s against 2.45 s measured. The 20 MiB points are the live replays'
// on an H200 (packages/native-cuda/bench/results/driver-time-h200.md): setAccess 30-40 us and
// unmap 25-28 us a 20 MiB mapping (lakebed's gpt2_ckpt and llama_lora, expandable segments'),
// and one call over 1, 8 or 32 mappings of 2 or 20 MiB costs the same per mapping there
// (setAccess 28-31 us, unmap 19-20 us).
//
// Where the table gives figures at several sizes, a call is charged by linear interpolation in
// bytes between the two measured points around its size; below the smallest point it costs what
// the smallest point costs, above the largest it follows the line through the last two points
// (a 4.7 GB cudaFree is charged about 3.4 ms). Where the table gives a range without sizes
// ("1 to 8"), the call costs the middle of the range. Calls the table does not list are marked
// ASSUMED below.
//
// | call             | measured (us)                                   | charged             |
// |------------------|-------------------------------------------------|---------------------|
// | memCreate        | 2 MiB 14, 20 MiB 14, 64 MiB 14, 512 MiB 25       | interpolated        |
// | memRelease       | 2 MiB 17, 512 MiB 369                            | interpolated        |
// | addressReserve   | 1 to 8                                           | 4.5                 |
// | addressFree      | not measured                                     | 4.5 (ASSUMED: as reserve) |
// | map              | 1 to 2 (any size)                                | 1.5                 |
// | setAccess        | per mapping: 2 MiB 29, 20 MiB 34, 512 MiB 60     | interpolated, per mapping |
// | unmap            | per mapping: 2 MiB 21, 20 MiB 25, 512 MiB 23-30  | interpolated, per mapping (512 MiB: 30) |
// | malloc           | 2 MiB 56, 512 MiB 118                            | interpolated        |
// | free             | 2 MiB 48, 512 MiB 417                            | interpolated        |
// | copyToHost/From  | not measured                                     | 10 + bytes / 25 GB/s (ASSUMED: PCIe 5 x16 class) |
// | memset           | not measured                                     | 5 + bytes / 1.5 TB/s (ASSUMED: HBM3 class) |
// | memGetInfo       | not measured                                     | 1 (ASSUMED)         |
//
// The host tier (copyOut, copyIn, hostReserve, hostRelease) is not charged to the device-call
// time above: its figures are in copyMicros, duplexCopyMicros, pinMicros and unpinMicros below,
// and the simulated device keeps copy time apart (a copy is data movement a policy may hide behind
// computation; the calls above are the allocator's own overhead).
//
// The charged figures are the H200's (packages/native-cuda/bench/results/host-tier-h200.md: one
// device run, PCIe Gen5 x16, driver 580.159.04, medians of 5 to 40 copies a size); the H100's are
// beside them for comparison (../shared/reference/tiering-dedup-handover.md D.3, one probe run on
// PCIe Gen5 x16).
// Copies are DriverCore's copyOut/copyIn between 2 MiB chunks and the pinned arena, within 1% of a
// raw cuMemcpy between cuMemAlloc'd and pinned memory in the same run at every size.
//
// | host tier           | H100 (D.3)                             | H200, charged (us; GB/s)                         |
// |---------------------|----------------------------------------|--------------------------------------------------|
// | copyOut (D2H)       | 2 MiB 48-49 GB/s; >= 64 MiB 55.1 GB/s  | 2 MiB 45.8 (45.8); 64 MiB 1,229 (54.6); 1 GiB 19,476 (55.1); 10 sizes |
// | copyIn (H2D)        | 2 MiB 48-49 GB/s; >= 64 MiB 54.9 GB/s  | 2 MiB 46.6 (45.0); 64 MiB 1,220 (55.0); 1 GiB 19,463 (55.2); 10 sizes |
// | both at once        | 87.5 GB/s aggregate (>= 64 MiB)        | size each way: 2 MiB 53.0 (79.1); 64 MiB 1,333 (100.7); 1 GiB 21,707 (98.9) |
// | pin (hostReserve)   | cudaMallocHost 1 GiB 502 ms; 8 GiB 4.0 s | cuMemHostAlloc 256 MiB 91 ms, 1 GiB 391 ms, 4 GiB 3,135 ms |
// | unpin (hostRelease) | cudaFreeHost 1 GiB 156 ms              | cuMemFreeHost 256 MiB 22 ms, 1 GiB 91 ms, 4 GiB 647 ms |
//
// Pinning is not linear in size on the H200 (4 GiB cost 784 ms a GiB against 391 for 1 GiB, one
// sample), and the driver's own hostReserve of 1 GiB, made right after releasing one, took 552-590
// ms; the charge follows cuMemHostAlloc's points.
//
// A copy's time is interpolated in bytes between measured points like the calls above, but beyond
// either end it follows the line through the two nearest points (a copy's cost is a fixed latency
// plus bytes over bandwidth, so a 64 KiB copy costs the line's few microseconds, not a 2 MiB
// copy's). "Both at once" is one copy each way started together on two streams: of
// duplexCopyMicros(out, in), the shared min(out, in) bytes each way cost the measured duplex time,
// and what one direction has left over costs that direction's own copy time.

import {
  CALL_MEM_CREATE, CALL_MEM_RELEASE, CALL_ADDRESS_RESERVE, CALL_ADDRESS_FREE, CALL_MAP,
  CALL_SET_ACCESS, CALL_UNMAP, CALL_MALLOC, CALL_FREE, CALL_COPY_TO_HOST, CALL_COPY_FROM_HOST,
  CALL_MEMSET, CALL_MEM_GET_INFO, CALL_HOST_RESERVE, CALL_COPY_OUT, CALL_COPY_IN, CALL_HOST_RELEASE,
} from "./device";

const MiB: f64 = 1048576;

// Measured points, (bytes, microseconds), ascending in bytes.
const MEM_CREATE_POINTS: StaticArray<f64> = [2 * MiB, 14, 20 * MiB, 14, 64 * MiB, 14, 512 * MiB, 25];
const MEM_RELEASE_POINTS: StaticArray<f64> = [2 * MiB, 17, 512 * MiB, 369];
const SET_ACCESS_POINTS: StaticArray<f64> = [2 * MiB, 29, 20 * MiB, 34, 512 * MiB, 60];
const MALLOC_POINTS: StaticArray<f64> = [2 * MiB, 56, 512 * MiB, 118];
const FREE_POINTS: StaticArray<f64> = [2 * MiB, 48, 512 * MiB, 417];
const UNMAP_POINTS: StaticArray<f64> = [2 * MiB, 21, 20 * MiB, 25, 512 * MiB, 30];

const ADDRESS_RESERVE_US: f64 = 4.5;
const ADDRESS_FREE_US: f64 = 4.5;
const MAP_US: f64 = 1.5;
const COPY_FIXED_US: f64 = 10;
const COPY_BYTES_PER_US: f64 = 25e9 / 1e6;
const MEMSET_FIXED_US: f64 = 5;
const MEMSET_BYTES_PER_US: f64 = 1.5e12 / 1e6;
const MEM_GET_INFO_US: f64 = 1;

// Host tier on the H200: (bytes copied each way, microseconds), ascending in bytes (the header's table).
const COPY_OUT_POINTS: StaticArray<f64> = [
  2 * MiB, 45.8, 4 * MiB, 84.0, 8 * MiB, 159.0, 16 * MiB, 310.3, 32 * MiB, 613.8,
  64 * MiB, 1228.9, 128 * MiB, 2441.8, 256 * MiB, 4877.6, 512 * MiB, 9753.5, 1024 * MiB, 19475.7,
];
const COPY_IN_POINTS: StaticArray<f64> = [
  2 * MiB, 46.6, 4 * MiB, 84.4, 8 * MiB, 159.6, 16 * MiB, 311.2, 32 * MiB, 614.2,
  64 * MiB, 1219.7, 128 * MiB, 2434.1, 256 * MiB, 4860.5, 512 * MiB, 9714.2, 1024 * MiB, 19463.0,
];
const DUPLEX_POINTS: StaticArray<f64> = [
  2 * MiB, 53.0, 4 * MiB, 93.4, 8 * MiB, 174.5, 16 * MiB, 339.2, 32 * MiB, 668.7,
  64 * MiB, 1332.5, 128 * MiB, 2662.1, 256 * MiB, 5292.3, 512 * MiB, 10633.5, 1024 * MiB, 21707.0,
];
// (bytes pinned or unpinned, microseconds)
const PIN_POINTS: StaticArray<f64> = [256 * MiB, 91000, 1024 * MiB, 391000, 4096 * MiB, 3134600];
const UNPIN_POINTS: StaticArray<f64> = [256 * MiB, 22300, 1024 * MiB, 91200, 4096 * MiB, 647400];

/** Linear interpolation over (bytes, us) pairs; see the header for the ends. */
function interpolate(points: StaticArray<f64>, bytes: f64): f64 {
  const n = points.length >> 1;
  if (bytes <= points[0]) return points[1];
  let i = 1;
  while (i < n - 1 && bytes > points[2 * i]) i++;
  const x0 = points[2 * (i - 1)];
  const y0 = points[2 * (i - 1) + 1];
  const x1 = points[2 * i];
  const y1 = points[2 * i + 1];
  return y0 + ((y1 - y0) * (bytes - x0)) / (x1 - x0);
}

/** The line through the two measured points nearest `bytes` (interpolation inside, extrapolation outside). */
function alongLine(points: StaticArray<f64>, bytes: f64): f64 {
  const n = points.length >> 1;
  let i = 1;
  while (i < n - 1 && bytes > points[2 * i]) i++;
  const x0 = points[2 * (i - 1)];
  const y0 = points[2 * (i - 1) + 1];
  const x1 = points[2 * i];
  const y1 = points[2 * i + 1];
  const t = y0 + ((y1 - y0) * (bytes - x0)) / (x1 - x0);
  return t > 0 ? t : 0;
}

/** Microseconds of one copy of `bytes` between the device and the host arena; kind is CALL_COPY_OUT or CALL_COPY_IN. */
export function copyMicros(kind: i32, bytes: u64): f64 {
  if (bytes == 0) return 0;
  assert(kind == CALL_COPY_OUT || kind == CALL_COPY_IN, "copyMicros: not a host-tier copy");
  return alongLine(kind == CALL_COPY_OUT ? COPY_OUT_POINTS : COPY_IN_POINTS, <f64>bytes);
}

/** Microseconds until both a copy out of `outBytes` and a copy in of `inBytes`, started together, are done. */
export function duplexCopyMicros(outBytes: u64, inBytes: u64): f64 {
  const shared = outBytes < inBytes ? outBytes : inBytes;
  if (shared == 0) return copyMicros(CALL_COPY_OUT, outBytes) + copyMicros(CALL_COPY_IN, inBytes);
  const both = alongLine(DUPLEX_POINTS, <f64>shared);
  if (outBytes > shared) return both + copyMicros(CALL_COPY_OUT, outBytes - shared);
  if (inBytes > shared) return both + copyMicros(CALL_COPY_IN, inBytes - shared);
  return both;
}

/** Microseconds to pin `bytes` of host memory as the arena (hostReserve). */
export function pinMicros(bytes: u64): f64 {
  return bytes == 0 ? 0 : alongLine(PIN_POINTS, <f64>bytes);
}

/** Microseconds to give a pinned arena of `bytes` back (hostRelease). */
export function unpinMicros(bytes: u64): f64 {
  return bytes == 0 ? 0 : alongLine(UNPIN_POINTS, <f64>bytes);
}

/**
 * Simulated microseconds for one call of `kind` on `bytes`; for setAccess and unmap, for one
 * mapping of `bytes` (the simulated device sums over the mappings a call covers).
 */
export function callMicros(kind: i32, bytes: u64): f64 {
  const b = <f64>bytes;
  switch (kind) {
    case CALL_MEM_CREATE: return interpolate(MEM_CREATE_POINTS, b);
    case CALL_MEM_RELEASE: return interpolate(MEM_RELEASE_POINTS, b);
    case CALL_ADDRESS_RESERVE: return ADDRESS_RESERVE_US;
    case CALL_ADDRESS_FREE: return ADDRESS_FREE_US;
    case CALL_MAP: return MAP_US;
    case CALL_SET_ACCESS: return interpolate(SET_ACCESS_POINTS, b);
    case CALL_UNMAP: return interpolate(UNMAP_POINTS, b);
    case CALL_MALLOC: return interpolate(MALLOC_POINTS, b);
    case CALL_FREE: return interpolate(FREE_POINTS, b);
    case CALL_COPY_TO_HOST:
    case CALL_COPY_FROM_HOST: return COPY_FIXED_US + b / COPY_BYTES_PER_US;
    case CALL_MEMSET: return MEMSET_FIXED_US + b / MEMSET_BYTES_PER_US;
    case CALL_MEM_GET_INFO: return MEM_GET_INFO_US;
    case CALL_HOST_RESERVE: return pinMicros(bytes);
    case CALL_HOST_RELEASE: return unpinMicros(bytes);
    case CALL_COPY_OUT:
    case CALL_COPY_IN: return copyMicros(kind, bytes);
  }
  return 0;
}
