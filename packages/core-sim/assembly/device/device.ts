// The Device: the one seam between a memory policy and whatever holds the memory. It mirrors the
// CUDA driver calls a policy needs and nothing more. Policies never call a driver directly; they
// hold a Device, and the replay picks which one:
//
//   SimulatedDevice (simulated.ts)  counts bytes and calls, enforces a capacity, charges time from
//                                   the cost model measured on an H100 and an H200 (cost-model.ts),
//                                   and hands out addresses (address-oracle.ts, address-model.ts).
//   ImportedDevice  (imported.ts)   forwards every call to the host through Wasm imports, which
//                                   packages/native-cuda binds to the CUDA or host-memory driver.
//
// Units: sizes and addresses are bytes (u64 inside the Wasm; f64 at the boundary, exact below
// 2^53). Physical handles are positive i32 ids. Sizes given to memCreate, addressReserve, map,
// setAccess and unmap are multiples of GRANULARITY_BYTES; a map covers one whole handle. As with the
// CUDA driver, one handle may be mapped at several virtual addresses at once (GMLake's stitching
// maps a chunk in its own block's range and in every stitched view of it).

export const GRANULARITY_BYTES: u64 = 2 << 20;

/** What memCreate returns when the device has no physical memory left. */
export const NO_HANDLE: i32 = -1;
/** What malloc and addressReserve return when they fail (0 is never a device address). */
export const NO_ADDRESS: u64 = 0;

/**
 * The driver calls, in the order of packages/native-cuda's CALL_KINDS table (src/call-kinds.ts
 * there), so the two count the same things under the same names. The TypeScript side of this
 * package names them in src/device-calls.ts, in this order.
 */
export const CALL_MEM_CREATE: i32 = 0;
export const CALL_MEM_RELEASE: i32 = 1;
export const CALL_ADDRESS_RESERVE: i32 = 2;
export const CALL_ADDRESS_FREE: i32 = 3;
export const CALL_MAP: i32 = 4;
export const CALL_SET_ACCESS: i32 = 5;
export const CALL_UNMAP: i32 = 6;
export const CALL_MALLOC: i32 = 7;
export const CALL_FREE: i32 = 8;
export const CALL_COPY_TO_HOST: i32 = 9;
export const CALL_COPY_FROM_HOST: i32 = 10;
export const CALL_MEMSET: i32 = 11;
export const CALL_MEM_GET_INFO: i32 = 12;
export const CALL_HOST_RESERVE: i32 = 13;
export const CALL_COPY_OUT: i32 = 14;
export const CALL_COPY_IN: i32 = 15;
export const CALL_HOST_RELEASE: i32 = 16;
export const CALL_KINDS: i32 = 17;

export abstract class Device {
  /** cuMemCreate: a physical allocation of `bytes`; its handle (> 0), or NO_HANDLE when out of memory. */
  abstract memCreate(bytes: u64): i32;
  /** cuMemRelease: gives a handle back (after its mapping is gone). */
  abstract memRelease(handle: i32): void;
  /** cuMemAddressReserve: a virtual range of `bytes`; its base, or NO_ADDRESS. */
  abstract addressReserve(bytes: u64, alignmentBytes: u64): u64;
  /** cuMemAddressFree: the exact range addressReserve gave. */
  abstract addressFree(va: u64, bytes: u64): void;
  /**
   * cuMemMap: the whole handle at [va, va + bytes), inside a reservation. False when the driver
   * refused (out of memory, or a fault injected for a test): then nothing was mapped, and the policy
   * undoes what its operation did so far and reports out of memory.
   */
  abstract map(va: u64, bytes: u64, handle: i32): bool;
  /**
   * cuMemSetAccess (read-write, this device): a range covered by whole mappings. False when the
   * driver refused; the mappings stay, without access, for the policy to undo.
   */
  abstract setAccess(va: u64, bytes: u64): bool;
  /** cuMemUnmap: a range covered by whole mappings; the reservation stays. */
  abstract unmap(va: u64, bytes: u64): void;
  /** cudaMalloc: `bytes` of plain device memory; its address, or NO_ADDRESS when out of memory. */
  abstract malloc(bytes: u64): u64;
  /** cudaFree of an address malloc gave. */
  abstract free(va: u64): void;
  /** cudaMemcpy device -> host: into this instance's linear memory at hostPtr. */
  abstract copyToHost(va: u64, hostPtr: usize, bytes: u64): void;
  /** cudaMemcpy host -> device: from this instance's linear memory at hostPtr. */
  abstract copyFromHost(va: u64, hostPtr: usize, bytes: u64): void;
  /** cudaMemGetInfo: free bytes. */
  abstract memGetInfo(): u64;

  // The host tier: one arena of pinned host memory per device, reserved once for a replay, into
  // which a policy copies device ranges out and back (tiering, serverless shrink). The arena is
  // addressed by offset, never by host pointer: the policy decides what lives where in it, and an
  // offset means the same on every driver (the simulated device has no arena bytes at all). A
  // device range given to copyOut/copyIn is mapped and accessible (covered by whole mappings that
  // setAccess was called on, or inside one cudaMalloc'd range) for the whole copy; a copy returns
  // when its bytes have arrived (a synchronous cuMemcpy), so the range may be unmapped right after
  // copyOut and read right after copyIn.
  /**
   * cuMemHostAlloc: `bytes` of pinned host memory as this replay's arena (on the host driver an
   * anonymous mmap, mlock'ed when RLIMIT_MEMLOCK allows). False when refused (no host memory);
   * then there is no arena. One arena per device at a time: a call while one is held is a policy
   * bug (a policy sizes its arena once, at the start of a replay).
   */
  abstract hostReserve(bytes: u64): bool;
  /** cuMemcpyDtoH: device [va, va + bytes) -> arena [hostOffset, hostOffset + bytes). */
  abstract copyOut(va: u64, hostOffset: u64, bytes: u64): void;
  /** cuMemcpyHtoD: arena [hostOffset, hostOffset + bytes) -> device [va, va + bytes). */
  abstract copyIn(hostOffset: u64, va: u64, bytes: u64): void;
  /** cuMemFreeHost: the arena back (end of replay; teardown also releases one left behind). */
  abstract hostRelease(): void;
  /** total bytes of the device (a device property; not a driver call) */
  abstract totalBytes(): u64;
  /**
   * Would `bytes` of physical memory fit now? A question the replay asks to tell an empty_cache
   * from the out-of-memory path; not a driver call (a real device answers from memGetInfo).
   */
  abstract canAllocate(bytes: u64): bool;

  // State that existed before a replay began (a trace recorded mid-run): the policy rebuilds its
  // segments and tells the device what they hold. Only a simulated device can adopt memory.
  /** a cudaMalloc'd range */
  abstract adoptMalloc(va: u64, bytes: u64): void;
  /** a virtual reservation */
  abstract adoptReservation(va: u64, bytes: u64): void;
  /** a mapped, accessible physical allocation; returns its handle */
  abstract adoptMapping(va: u64, bytes: u64): i32;
}
