// The imported device: every call goes out of the Wasm instance to the host, which binds these
// imports to packages/native-cuda's Driver (CUDA virtual-memory API on a GPU, or memfd + mmap in
// host memory). The same compiled policy that was simulated and property-tested runs on real
// memory through here.
//
// Import module "device". Addresses and sizes are f64 (whole bytes, exact below 2^53); handles are
// i32. A call that fails for any reason other than running out of memory throws on the host side,
// which unwinds through the Wasm instance to the caller of the replay.
//
// | import                                            | driver call           | result |
// |---------------------------------------------------|-----------------------|--------|
// | memCreate(bytes: f64): i32                        | cuMemCreate           | handle > 0, or -1 when out of memory |
// | memRelease(handle: i32): void                     | cuMemRelease          | |
// | addressReserve(bytes: f64, alignment: f64): f64   | cuMemAddressReserve   | base, or -1 when no address space (alignment 0 = default) |
// | addressFree(va: f64, bytes: f64): void            | cuMemAddressFree      | |
// | map(va: f64, bytes: f64, handle: i32, offset: f64): i32 | cuMemMap        | 0, or -1 when refused (out of memory, injected fault) |
// | setAccess(va: f64, bytes: f64): i32               | cuMemSetAccess (rw)   | 0, or -1 when refused |
// | unmap(va: f64, bytes: f64): void                  | cuMemUnmap            | |
// | malloc(bytes: f64): f64                           | cuMemAlloc            | address, or -1 when out of memory |
// | free(va: f64): void                               | cuMemFree             | |
// | copyToHost(va: f64, hostPtr: i32, bytes: f64): void   | cuMemcpyDtoH      | into this instance's memory at hostPtr |
// | copyFromHost(va: f64, hostPtr: i32, bytes: f64): void | cuMemcpyHtoD      | from this instance's memory at hostPtr |
// | memGetInfoFree(): f64                             | cuMemGetInfo (free)   | bytes |
// | memGetInfoTotal(): f64                            | cuMemGetInfo (total)  | bytes |
// | hostReserve(bytes: f64): i32                      | cuMemHostAlloc        | 0, or -1 when refused (no host memory, injected fault) |
// | copyOut(va: f64, hostOffset: f64, bytes: f64): void | cuMemcpyDtoH        | device range -> the arena at hostOffset |
// | copyIn(hostOffset: f64, va: f64, bytes: f64): void  | cuMemcpyHtoD        | the arena at hostOffset -> device range |
// | hostRelease(): void                               | cuMemFreeHost         | |
// | fillPattern(va: f64, bytes: f64, seed: f64): void | the check pattern (native-cuda pattern.h) | |
// | checkPattern(va: f64, bytes: f64, seed: f64): f64 | reads it back         | bytes that differ (0 = intact) |
//
// The host-tier imports (device.ts says what they are for) name arena offsets, never host
// pointers: the arena lives in the driver, outside this instance's memory, and the driver checks
// each copy (arena reserved, offset range inside it, device range mapped with access) and throws
// on a bad one, as it does for any other call. A host that implements these imports itself (the
// wasm2c build of packages/torch) keeps one pinned buffer per instance and copies with the
// driver's synchronous cuMemcpyDtoH/HtoD between it and the driver address of the range.
//
// The names and argument order follow native-cuda's Driver methods (CALL_KINDS); memGetInfo is
// split in two so that no struct crosses the boundary. The host adds nothing of its own: where the
// simulated device would refuse a call, the driver refuses it.
//
// Two address spaces. The policy sees the addresses the simulated device would hand out with
// traceAddresses off (address-model.ts), never the driver's: best fit breaks ties between
// equal-size blocks by address, so a policy fed the driver's addresses (which differ between the
// GPU, host memory and runs) would take other decisions than the simulator did, and what was
// simulated would not be what runs. This device keeps the model's ranges and translates each
// model address to the driver's address of the same byte, in the range the driver gave:
//
//   model  [base_m ........ base_m + bytes)      one malloc or one reservation
//   driver [base_d ........ base_d + bytes)      what malloc/addressReserve returned
//   va_d = base_d + (va_m - base_m)
//
// Handles are the driver's own ids (policies only store them). canAllocate answers from the
// model's physical bytes against the same capacity as the simulated device, so the policy's
// questions get the simulator's answers; the real device still says out of memory when it is.
//
// INV-IMP-1  every model range in `mallocs` and `reservations` has exactly one driver base in
//            `driverBase`, and the driver range has the same size.
// INV-IMP-2  physicalBytes = the sum of handleBytes + the sizes in `mallocs`.

import { Device, NO_ADDRESS, NO_HANDLE } from "./device";
import { RangeList } from "./range-list";
import { modelMallocAddress, modelReserveAddress } from "./address-model";

@external("device", "memCreate") declare function hostMemCreate(bytes: f64): i32;
@external("device", "memRelease") declare function hostMemRelease(handle: i32): void;
@external("device", "addressReserve") declare function hostAddressReserve(bytes: f64, alignment: f64): f64;
@external("device", "addressFree") declare function hostAddressFree(va: f64, bytes: f64): void;
@external("device", "map") declare function hostMap(va: f64, bytes: f64, handle: i32, offset: f64): i32;
@external("device", "setAccess") declare function hostSetAccess(va: f64, bytes: f64): i32;
@external("device", "unmap") declare function hostUnmap(va: f64, bytes: f64): void;
@external("device", "malloc") declare function hostMalloc(bytes: f64): f64;
@external("device", "free") declare function hostFree(va: f64): void;
@external("device", "copyToHost") declare function hostCopyToHost(va: f64, hostPtr: i32, bytes: f64): void;
@external("device", "copyFromHost") declare function hostCopyFromHost(va: f64, hostPtr: i32, bytes: f64): void;
@external("device", "memGetInfoFree") declare function hostMemGetInfoFree(): f64;
@external("device", "memGetInfoTotal") declare function hostMemGetInfoTotal(): f64;
@external("device", "hostReserve") declare function hostHostReserve(bytes: f64): i32;
@external("device", "copyOut") declare function hostCopyOut(va: f64, hostOffset: f64, bytes: f64): void;
@external("device", "copyIn") declare function hostCopyIn(hostOffset: f64, va: f64, bytes: f64): void;
@external("device", "hostRelease") declare function hostHostRelease(): void;
@external("device", "fillPattern") declare function hostFillPattern(va: f64, bytes: f64, seed: f64): void;
@external("device", "checkPattern") declare function hostCheckPattern(va: f64, bytes: f64, seed: f64): f64;

export class ImportedDevice extends Device {
  /** physical bytes the policy may count on (the simulated device's capacity: max(total, limit)) */
  capacityBytes: u64;
  /** the device total the policy sizes expandable reservations from (as the simulated device) */
  deviceTotalBytes: u64;
  physicalBytes: u64 = 0;
  /** model ranges (INV-IMP-1) */
  mallocs: RangeList = new RangeList();
  reservations: RangeList = new RangeList();
  /** model base -> driver base, for mallocs and reservations (the model keeps them disjoint) */
  private driverBase: Map<u64, f64> = new Map<u64, f64>();
  /** driver handle -> bytes, while unreleased (INV-IMP-2) */
  private handleBytes: Map<i32, u64> = new Map<i32, u64>();

  constructor(capacityBytes: u64, deviceTotalBytes: u64) {
    super();
    this.capacityBytes = capacityBytes;
    this.deviceTotalBytes = deviceTotalBytes;
  }

  memCreate(bytes: u64): i32 {
    const h = hostMemCreate(<f64>bytes);
    if (h <= 0) return NO_HANDLE;
    this.handleBytes.set(h, bytes);
    this.physicalBytes += bytes;
    return h;
  }

  memRelease(handle: i32): void {
    hostMemRelease(handle);
    this.physicalBytes -= this.handleBytes.get(handle);
    this.handleBytes.delete(handle);
  }

  addressReserve(bytes: u64, alignmentBytes: u64): u64 {
    const driverVa = hostAddressReserve(<f64>bytes, <f64>alignmentBytes);
    if (driverVa <= 0) return NO_ADDRESS;
    const va = modelReserveAddress(bytes, this.reservations, this.mallocs);
    this.reservations.insert(va, bytes, 0);
    this.driverBase.set(va, driverVa);
    return va;
  }

  addressFree(va: u64, bytes: u64): void {
    const i = this.reservations.indexOf(va);
    assert(i >= 0 && this.reservations.size(i) == bytes, "addressFree: not a reservation");
    hostAddressFree(this.driverBase.get(va), <f64>bytes);
    this.reservations.removeAt(i);
    this.driverBase.delete(va);
  }

  map(va: u64, bytes: u64, handle: i32): bool { return hostMap(this.inReservation(va, bytes), <f64>bytes, handle, 0) == 0; }
  setAccess(va: u64, bytes: u64): bool { return hostSetAccess(this.inReservation(va, bytes), <f64>bytes) == 0; }
  unmap(va: u64, bytes: u64): void { hostUnmap(this.inReservation(va, bytes), <f64>bytes); }

  malloc(bytes: u64): u64 {
    const driverVa = hostMalloc(<f64>bytes);
    if (driverVa <= 0) return NO_ADDRESS;
    const va = modelMallocAddress(bytes, this.mallocs, this.reservations);
    if (va == NO_ADDRESS) {
      hostFree(driverVa); // the model's address space is full: give the memory back, report OOM
      return NO_ADDRESS;
    }
    this.mallocs.insert(va, bytes, 0);
    this.driverBase.set(va, driverVa);
    this.physicalBytes += bytes;
    return va;
  }

  free(va: u64): void {
    const i = this.mallocs.indexOf(va);
    assert(i >= 0, "free: not a cudaMalloc'd address");
    hostFree(this.driverBase.get(va));
    this.physicalBytes -= this.mallocs.size(i);
    this.mallocs.removeAt(i);
    this.driverBase.delete(va);
  }

  copyToHost(va: u64, hostPtr: usize, bytes: u64): void { hostCopyToHost(this.driverAddress(va, bytes), <i32>hostPtr, <f64>bytes); }
  copyFromHost(va: u64, hostPtr: usize, bytes: u64): void { hostCopyFromHost(this.driverAddress(va, bytes), <i32>hostPtr, <f64>bytes); }
  memGetInfo(): u64 { return <u64>hostMemGetInfoFree(); }
  hostReserve(bytes: u64): bool { return hostHostReserve(<f64>bytes) == 0; }
  copyOut(va: u64, hostOffset: u64, bytes: u64): void { hostCopyOut(this.driverAddress(va, bytes), <f64>hostOffset, <f64>bytes); }
  copyIn(hostOffset: u64, va: u64, bytes: u64): void { hostCopyIn(<f64>hostOffset, this.driverAddress(va, bytes), <f64>bytes); }
  hostRelease(): void { hostHostRelease(); }
  totalBytes(): u64 { return this.deviceTotalBytes; }
  canAllocate(bytes: u64): bool { return this.physicalBytes + bytes <= this.capacityBytes; }

  /** Writes the check pattern (seeded) at the probes of an allocation the policy handed out. */
  fillPattern(va: u64, bytes: u64, seed: i32): void {
    hostFillPattern(this.driverAddress(va, bytes), <f64>bytes, <f64>seed);
  }
  /** Bytes of the pattern that differ now (0: the allocation still holds what was written). */
  checkPattern(va: u64, bytes: u64, seed: i32): f64 {
    return hostCheckPattern(this.driverAddress(va, bytes), <f64>bytes, <f64>seed);
  }
  /** The driver's total (cuMemGetInfo), for a host that wants it; policies use totalBytes(). */
  driverTotalBytes(): f64 { return hostMemGetInfoTotal(); }

  adoptMalloc(va: u64, bytes: u64): void { abort("a real device cannot adopt memory from a trace"); }
  adoptReservation(va: u64, bytes: u64): void { abort("a real device cannot adopt memory from a trace"); }
  adoptMapping(va: u64, bytes: u64): i32 { abort("a real device cannot adopt memory from a trace"); return NO_HANDLE; }

  /** The driver address of model [va, va + bytes) inside one reservation. */
  private inReservation(va: u64, bytes: u64): f64 {
    const i = this.reservations.containing(va);
    assert(i >= 0 && va + bytes <= this.reservations.start(i) + this.reservations.size(i), "imported device: range outside a reservation");
    const base = this.reservations.start(i);
    return this.driverBase.get(base) + <f64>(va - base);
  }

  /**
   * The model address of a driver address inside a malloc or a reservation, -1 when none holds it:
   * the inverse of driverAddress, for a host that logs what the driver was asked in the policy's
   * own address space (packages/torch's trace, which the simulator then replays as the policy saw it).
   */
  modelAddress(driverVa: f64): f64 {
    for (let k = 0; k < 2; k++) {
      const list = k == 0 ? this.mallocs : this.reservations;
      for (let i = 0; i < list.count; i++) {
        const base = list.start(i);
        const d = this.driverBase.get(base);
        if (driverVa >= d && driverVa < d + <f64>list.size(i)) return <f64>base + (driverVa - d);
      }
    }
    return -1;
  }

  /**
   * The driver address of model [va, va + bytes), inside a reservation or a malloc. Public for a
   * host that hands blocks to a program (packages/torch gives PyTorch the driver's pointers).
   */
  driverAddress(va: u64, bytes: u64): f64 {
    const m = this.mallocs.containing(va);
    if (m >= 0) {
      assert(va + bytes <= this.mallocs.start(m) + this.mallocs.size(m), "imported device: range runs past its malloc");
      const base = this.mallocs.start(m);
      return this.driverBase.get(base) + <f64>(va - base);
    }
    return this.inReservation(va, bytes);
  }
}
