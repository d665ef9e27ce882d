// The simulated device: a driver made of bookkeeping. It checks every call the way the real
// driver would refuse it (a map outside a reservation, a double free), counts calls and bytes per
// call kind, enforces a capacity of physical memory (handles + cudaMalloc'd bytes), charges the
// time of each call from the H100 cost model, and hands out addresses from the trace (the address
// oracle) or from the address model.
//
// The host tier (device.ts) has no bytes here either: the device checks each call as the live
// driver does (one arena, reserved before use and released once; offsets inside it; the device
// range mapped with access or inside a malloc), counts host bytes and the bytes copied each way,
// and charges their time to counters of their own (hostMicros, copyOutMicros, copyInMicros), not
// to `micros`, which stays the allocator's own call overhead that every policy is compared on.
//
// INV-SIM-HOST  hostBytes is 0 or the one arena's size; peakHostBytes >= hostBytes; every copy
//               lay inside [0, hostBytes).
// INV-SIM-ACCESS  accessible holds exactly the mappings setAccess succeeded on, by (start, size),
//               and no entry outlives its mapping.

import {
  Device, NO_ADDRESS, NO_HANDLE, GRANULARITY_BYTES, CALL_KINDS, CALL_MEM_CREATE, CALL_MEM_RELEASE,
  CALL_ADDRESS_RESERVE, CALL_ADDRESS_FREE, CALL_MAP, CALL_SET_ACCESS, CALL_UNMAP, CALL_MALLOC,
  CALL_FREE, CALL_COPY_TO_HOST, CALL_COPY_FROM_HOST, CALL_MEM_GET_INFO, CALL_HOST_RESERVE,
  CALL_COPY_OUT, CALL_COPY_IN, CALL_HOST_RELEASE,
} from "./device";
import { callMicros, copyMicros, pinMicros, unpinMicros } from "./cost-model";
import { RangeList } from "./range-list";
import { AddressOracle } from "./address-oracle";
import { modelMallocAddress, modelReserveAddress } from "./address-model";
import { CallLog } from "./call-log";

export class SimulatedDevice extends Device {
  /** physical bytes the device has (handles + mallocs may not exceed it) */
  capacityBytes: u64;
  /** what cudaMemGetInfo reports as total */
  deviceTotalBytes: u64;
  oracle: AddressOracle | null = null;

  physicalBytes: u64 = 0;
  peakPhysicalBytes: u64 = 0;
  micros: f64 = 0;
  calls: StaticArray<i64> = new StaticArray<i64>(CALL_KINDS);
  callBytes: StaticArray<i64> = new StaticArray<i64>(CALL_KINDS);
  /** every call in order, when asked for (the differential test against live replays) */
  callLog: CallLog | null = null;

  mallocs: RangeList = new RangeList();
  reservations: RangeList = new RangeList();
  /** tag: the handle mapped there */
  mappings: RangeList = new RangeList();
  /** the mappings with access (INV-SIM-ACCESS); tag unused */
  accessible: RangeList = new RangeList();

  /** the host arena's bytes (0: none reserved now; INV-SIM-HOST) */
  hostBytes: u64 = 0;
  peakHostBytes: u64 = 0;
  /** simulated microseconds of pinning and unpinning the arena */
  hostMicros: f64 = 0;
  /** simulated microseconds of copies out (device -> arena) and in (arena -> device), one at a time */
  copyOutMicros: f64 = 0;
  copyInMicros: f64 = 0;
  /** handle id -> bytes (0: released or never made); handle 0 is unused */
  private handleBytes: StaticArray<u64> = new StaticArray<u64>(256);
  /** handle id -> how many mappings it has (a handle may be mapped at several addresses, as stitching does) */
  private handleMappings: StaticArray<i32> = new StaticArray<i32>(256);
  private freeHandles: StaticArray<i32> = new StaticArray<i32>(256);
  private freeHandleCount: i32 = 0;
  private handleCount: i32 = 1;
  liveHandles: i32 = 0;

  constructor(capacityBytes: u64, deviceTotalBytes: u64) {
    super();
    this.capacityBytes = capacityBytes;
    this.deviceTotalBytes = deviceTotalBytes;
  }

  /**
   * Fault injection for tests of the policies' undo paths, as native-cuda's failEvery: every n-th
   * call of a kind (counted from when it was set) fails, after it was counted. Only the calls a
   * policy can see fail on a real device (memCreate, malloc, addressReserve: out of memory or address
   * space; map, setAccess: refused).
   */
  failEvery: StaticArray<i64> = new StaticArray<i64>(CALL_KINDS);
  private failCounts: StaticArray<i64> = new StaticArray<i64>(CALL_KINDS);

  setFailEvery(kind: i32, n: i64): void {
    unchecked((this.failEvery[kind] = n));
    unchecked((this.failCounts[kind] = 0));
  }

  private injectFault(kind: i32): bool {
    const n = unchecked(this.failEvery[kind]);
    if (n <= 0) return false;
    const c = unchecked(this.failCounts[kind]) + 1;
    unchecked((this.failCounts[kind] = c));
    return c % n == 0;
  }

  private charge(kind: i32, bytes: u64): void {
    this.countCall(kind, bytes);
    this.micros += callMicros(kind, bytes);
  }

  /** Counts and logs a call without charging it to `micros` (the host tier keeps its own time). */
  private countCall(kind: i32, bytes: u64): void {
    unchecked((this.calls[kind] += 1));
    unchecked((this.callBytes[kind] += <i64>bytes));
    const log = this.callLog;
    if (log) log.add(kind, bytes);
  }

  /**
   * One call over [va, va + bytes), a range of whole mappings, charged per mapping it covers: the
   * driver's work in cuMemSetAccess and cuMemUnmap is per mapping (cost-model.ts).
   */
  private chargePerMapping(kind: i32, va: u64, bytes: u64): void {
    unchecked((this.calls[kind] += 1));
    unchecked((this.callBytes[kind] += <i64>bytes));
    const end = va + bytes;
    const mappings = this.mappings;
    for (let i = mappings.indexOf(va); i >= 0 && i < mappings.count && mappings.start(i) < end; i++) {
      this.micros += callMicros(kind, mappings.size(i));
    }
    const log = this.callLog;
    if (log) log.add(kind, bytes);
  }

  private take(bytes: u64): bool {
    if (this.physicalBytes + bytes > this.capacityBytes) return false;
    this.physicalBytes += bytes;
    if (this.physicalBytes > this.peakPhysicalBytes) this.peakPhysicalBytes = this.physicalBytes;
    return true;
  }

  memCreate(bytes: u64): i32 {
    assert(bytes > 0 && bytes % GRANULARITY_BYTES == 0, "memCreate: size is not a multiple of the granularity");
    this.charge(CALL_MEM_CREATE, bytes);
    if (this.injectFault(CALL_MEM_CREATE) || !this.take(bytes)) return NO_HANDLE;
    return this.newHandle(bytes);
  }

  memRelease(handle: i32): void {
    assert(handle > 0 && handle < this.handleCount && this.handleBytes[handle] != 0, "memRelease: unknown handle");
    assert(this.handleMappings[handle] == 0, "memRelease: handle still mapped (the simulated driver wants unmap first)");
    const bytes = this.handleBytes[handle];
    this.charge(CALL_MEM_RELEASE, bytes);
    this.physicalBytes -= bytes;
    this.dropHandle(handle);
  }

  addressReserve(bytes: u64, alignmentBytes: u64): u64 {
    assert(bytes > 0 && bytes % GRANULARITY_BYTES == 0, "addressReserve: size is not a multiple of the granularity");
    this.charge(CALL_ADDRESS_RESERVE, bytes);
    if (this.injectFault(CALL_ADDRESS_RESERVE)) return NO_ADDRESS;
    let va = NO_ADDRESS;
    const oracle = this.oracle;
    if (oracle) va = oracle.takeReservation(bytes, this.reservations, this.mallocs);
    if (va == NO_ADDRESS || (alignmentBytes > 0 && va % alignmentBytes != 0)) {
      va = modelReserveAddress(bytes, this.reservations, this.mallocs);
    }
    this.reservations.insert(va, bytes, 0);
    return va;
  }

  addressFree(va: u64, bytes: u64): void {
    const i = this.reservations.indexOf(va);
    assert(i >= 0 && this.reservations.size(i) == bytes, "addressFree: not a reservation");
    assert(!this.mappings.overlaps(va, bytes), "addressFree: the reservation still has mappings");
    this.charge(CALL_ADDRESS_FREE, bytes);
    this.reservations.removeAt(i);
  }

  map(va: u64, bytes: u64, handle: i32): bool {
    assert(handle > 0 && handle < this.handleCount && this.handleBytes[handle] == bytes, "map: the mapping must cover one whole handle");
    assert(this.reservations.covers(va, bytes), "map: range outside a reservation");
    assert(!this.mappings.overlaps(va, bytes), "map: range already mapped");
    this.charge(CALL_MAP, bytes);
    if (this.injectFault(CALL_MAP)) return false;
    this.mappings.insert(va, bytes, handle);
    this.handleMappings[handle]++;
    return true;
  }

  setAccess(va: u64, bytes: u64): bool {
    assert(this.coveredByMappings(va, bytes), "setAccess: range not covered by mappings");
    this.chargePerMapping(CALL_SET_ACCESS, va, bytes);
    if (this.injectFault(CALL_SET_ACCESS)) return false;
    const end = va + bytes;
    for (let i = this.mappings.indexOf(va); i < this.mappings.count && this.mappings.start(i) < end; i++) {
      const start = this.mappings.start(i);
      if (this.accessible.indexOf(start) < 0) this.accessible.insert(start, this.mappings.size(i), 0);
    }
    return true;
  }

  unmap(va: u64, bytes: u64): void {
    assert(this.coveredByMappings(va, bytes), "unmap: range not covered by whole mappings");
    this.chargePerMapping(CALL_UNMAP, va, bytes);
    let i = this.mappings.indexOf(va);
    const end = va + bytes;
    while (i < this.mappings.count && this.mappings.start(i) < end) {
      const a = this.accessible.indexOf(this.mappings.start(i));
      if (a >= 0) this.accessible.removeAt(a);
      this.handleMappings[this.mappings.tag(i)]--;
      this.mappings.removeAt(i);
    }
  }

  malloc(bytes: u64): u64 {
    assert(bytes > 0, "malloc: zero bytes");
    this.charge(CALL_MALLOC, bytes);
    if (this.injectFault(CALL_MALLOC) || !this.take(bytes)) return NO_ADDRESS;
    let va = NO_ADDRESS;
    const oracle = this.oracle;
    if (oracle) va = oracle.takeMalloc(bytes, this.mallocs, this.reservations);
    if (va == NO_ADDRESS) va = modelMallocAddress(bytes, this.mallocs, this.reservations);
    if (va == NO_ADDRESS) {
      this.physicalBytes -= bytes;
      return NO_ADDRESS;
    }
    this.mallocs.insert(va, bytes, 0);
    return va;
  }

  free(va: u64): void {
    const i = this.mallocs.indexOf(va);
    assert(i >= 0, "free: not a cudaMalloc'd address");
    const bytes = this.mallocs.size(i);
    this.charge(CALL_FREE, bytes);
    this.physicalBytes -= bytes;
    this.mallocs.removeAt(i);
  }

  copyToHost(va: u64, hostPtr: usize, bytes: u64): void {
    assert(this.coveredByMappings(va, bytes) || this.mallocs.covers(va, bytes), "copyToHost: range not accessible");
    this.charge(CALL_COPY_TO_HOST, bytes);
  }

  copyFromHost(va: u64, hostPtr: usize, bytes: u64): void {
    assert(this.coveredByMappings(va, bytes) || this.mallocs.covers(va, bytes), "copyFromHost: range not accessible");
    this.charge(CALL_COPY_FROM_HOST, bytes);
  }

  hostReserve(bytes: u64): bool {
    assert(bytes > 0, "hostReserve: zero bytes");
    assert(this.hostBytes == 0, "hostReserve: this device already holds its host arena (one at a time)");
    this.countCall(CALL_HOST_RESERVE, bytes);
    if (this.injectFault(CALL_HOST_RESERVE)) return false;
    this.hostMicros += pinMicros(bytes);
    this.hostBytes = bytes;
    if (bytes > this.peakHostBytes) this.peakHostBytes = bytes;
    return true;
  }

  copyOut(va: u64, hostOffset: u64, bytes: u64): void {
    this.checkCopy(va, hostOffset, bytes, "copyOut");
    this.countCall(CALL_COPY_OUT, bytes);
    this.copyOutMicros += copyMicros(CALL_COPY_OUT, bytes);
  }

  copyIn(hostOffset: u64, va: u64, bytes: u64): void {
    this.checkCopy(va, hostOffset, bytes, "copyIn");
    this.countCall(CALL_COPY_IN, bytes);
    this.copyInMicros += copyMicros(CALL_COPY_IN, bytes);
  }

  hostRelease(): void {
    assert(this.hostBytes > 0, "hostRelease: no host arena is reserved");
    this.countCall(CALL_HOST_RELEASE, this.hostBytes);
    this.hostMicros += unpinMicros(this.hostBytes);
    this.hostBytes = 0;
  }

  /** The live driver's refusals of a host-tier copy, as assertions. */
  private checkCopy(va: u64, hostOffset: u64, bytes: u64, call: string): void {
    assert(bytes > 0, call + ": zero bytes");
    assert(this.hostBytes > 0, call + ": no host arena is reserved");
    assert(hostOffset <= this.hostBytes && bytes <= this.hostBytes - hostOffset, call + ": the range runs past the host arena");
    assert(this.accessibleRange(va, bytes), call + ": device range not mapped with access");
  }

  memGetInfo(): u64 {
    this.charge(CALL_MEM_GET_INFO, 0);
    return this.freeBytes();
  }

  /** free bytes, without charging a call (for the replay's own questions) */
  freeBytes(): u64 {
    return this.capacityBytes > this.physicalBytes ? this.capacityBytes - this.physicalBytes : 0;
  }

  totalBytes(): u64 {
    return this.deviceTotalBytes;
  }

  canAllocate(bytes: u64): bool {
    return this.physicalBytes + bytes <= this.capacityBytes;
  }

  adoptMalloc(va: u64, bytes: u64): void {
    this.physicalBytes += bytes;
    if (this.physicalBytes > this.peakPhysicalBytes) this.peakPhysicalBytes = this.physicalBytes;
    this.mallocs.insert(va, bytes, 0);
  }

  adoptReservation(va: u64, bytes: u64): void {
    this.reservations.insert(va, bytes, 0);
  }

  adoptMapping(va: u64, bytes: u64): i32 {
    this.physicalBytes += bytes;
    if (this.physicalBytes > this.peakPhysicalBytes) this.peakPhysicalBytes = this.physicalBytes;
    const handle = this.newHandle(bytes);
    this.mappings.insert(va, bytes, handle);
    this.accessible.insert(va, bytes, 0);
    this.handleMappings[handle] = 1;
    return handle;
  }

  /**
   * [va, va + bytes) may be read and written: inside one malloc, or covered without a gap by
   * mappings with access (any part of them: as native-cuda's LiveTables.Accessible).
   */
  private accessibleRange(va: u64, bytes: u64): bool {
    const m = this.mallocs.containing(va);
    if (m >= 0 && va + bytes <= this.mallocs.start(m) + this.mallocs.size(m)) return true;
    let i = this.accessible.containing(va);
    if (i < 0) return false;
    let at = va;
    const end = va + bytes;
    while (at < end) {
      if (i >= this.accessible.count || this.accessible.start(i) > at) return false;
      at = this.accessible.start(i) + this.accessible.size(i);
      i++;
    }
    return true;
  }

  /** [va, va + bytes) starts and ends on mapping boundaries with no gap inside. */
  private coveredByMappings(va: u64, bytes: u64): bool {
    let i = this.mappings.indexOf(va);
    if (i < 0) return false;
    let at = va;
    const end = va + bytes;
    while (at < end) {
      if (i >= this.mappings.count || this.mappings.start(i) != at) return false;
      at += this.mappings.size(i);
      i++;
    }
    return at == end;
  }

  private newHandle(bytes: u64): i32 {
    let h: i32;
    if (this.freeHandleCount > 0) {
      h = this.freeHandles[--this.freeHandleCount];
    } else {
      if (this.handleCount == this.handleBytes.length) this.growHandles();
      h = this.handleCount++;
    }
    this.handleBytes[h] = bytes;
    this.handleMappings[h] = 0;
    this.liveHandles++;
    return h;
  }

  private dropHandle(h: i32): void {
    this.handleBytes[h] = 0;
    if (this.freeHandleCount == this.freeHandles.length) {
      const grown = new StaticArray<i32>(this.freeHandles.length * 2);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.freeHandles), <usize>this.freeHandleCount << 2);
      this.freeHandles = grown;
    }
    this.freeHandles[this.freeHandleCount++] = h;
    this.liveHandles--;
  }

  private growHandles(): void {
    const n = this.handleBytes.length * 2;
    const bytes = new StaticArray<u64>(n);
    const mappings = new StaticArray<i32>(n);
    memory.copy(changetype<usize>(bytes), changetype<usize>(this.handleBytes), <usize>this.handleCount << 3);
    memory.copy(changetype<usize>(mappings), changetype<usize>(this.handleMappings), <usize>this.handleCount << 2);
    this.handleBytes = bytes;
    this.handleMappings = mappings;
  }
}
