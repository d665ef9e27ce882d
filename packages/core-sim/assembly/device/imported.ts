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
// | map(va: f64, bytes: f64, handle: i32, offset: f64): void | cuMemMap       | whole handle, offset 0 |
// | setAccess(va: f64, bytes: f64): void              | cuMemSetAccess (rw)   | |
// | unmap(va: f64, bytes: f64): void                  | cuMemUnmap            | |
// | malloc(bytes: f64): f64                           | cuMemAlloc            | address, or -1 when out of memory |
// | free(va: f64): void                               | cuMemFree             | |
// | copyToHost(va: f64, hostPtr: i32, bytes: f64): void   | cuMemcpyDtoH      | into this instance's memory at hostPtr |
// | copyFromHost(va: f64, hostPtr: i32, bytes: f64): void | cuMemcpyHtoD      | from this instance's memory at hostPtr |
// | memGetInfoFree(): f64                             | cuMemGetInfo (free)   | bytes |
// | memGetInfoTotal(): f64                            | cuMemGetInfo (total)  | bytes |
//
// The names and argument order follow native-cuda's Driver methods (CALL_KINDS); memGetInfo is
// split in two so that no struct crosses the boundary. The host adds nothing of its own: where the
// simulated device would refuse a call, the driver refuses it.

import { Device, NO_ADDRESS, NO_HANDLE } from "./device";

@external("device", "memCreate") declare function hostMemCreate(bytes: f64): i32;
@external("device", "memRelease") declare function hostMemRelease(handle: i32): void;
@external("device", "addressReserve") declare function hostAddressReserve(bytes: f64, alignment: f64): f64;
@external("device", "addressFree") declare function hostAddressFree(va: f64, bytes: f64): void;
@external("device", "map") declare function hostMap(va: f64, bytes: f64, handle: i32, offset: f64): void;
@external("device", "setAccess") declare function hostSetAccess(va: f64, bytes: f64): void;
@external("device", "unmap") declare function hostUnmap(va: f64, bytes: f64): void;
@external("device", "malloc") declare function hostMalloc(bytes: f64): f64;
@external("device", "free") declare function hostFree(va: f64): void;
@external("device", "copyToHost") declare function hostCopyToHost(va: f64, hostPtr: i32, bytes: f64): void;
@external("device", "copyFromHost") declare function hostCopyFromHost(va: f64, hostPtr: i32, bytes: f64): void;
@external("device", "memGetInfoFree") declare function hostMemGetInfoFree(): f64;
@external("device", "memGetInfoTotal") declare function hostMemGetInfoTotal(): f64;

export class ImportedDevice extends Device {
  memCreate(bytes: u64): i32 {
    const h = hostMemCreate(<f64>bytes);
    return h > 0 ? h : NO_HANDLE;
  }
  memRelease(handle: i32): void { hostMemRelease(handle); }
  addressReserve(bytes: u64, alignmentBytes: u64): u64 {
    const va = hostAddressReserve(<f64>bytes, <f64>alignmentBytes);
    return va > 0 ? <u64>va : NO_ADDRESS;
  }
  addressFree(va: u64, bytes: u64): void { hostAddressFree(<f64>va, <f64>bytes); }
  map(va: u64, bytes: u64, handle: i32): void { hostMap(<f64>va, <f64>bytes, handle, 0); }
  setAccess(va: u64, bytes: u64): void { hostSetAccess(<f64>va, <f64>bytes); }
  unmap(va: u64, bytes: u64): void { hostUnmap(<f64>va, <f64>bytes); }
  malloc(bytes: u64): u64 {
    const va = hostMalloc(<f64>bytes);
    return va > 0 ? <u64>va : NO_ADDRESS;
  }
  free(va: u64): void { hostFree(<f64>va); }
  copyToHost(va: u64, hostPtr: usize, bytes: u64): void { hostCopyToHost(<f64>va, <i32>hostPtr, <f64>bytes); }
  copyFromHost(va: u64, hostPtr: usize, bytes: u64): void { hostCopyFromHost(<f64>va, <i32>hostPtr, <f64>bytes); }
  memGetInfo(): u64 { return <u64>hostMemGetInfoFree(); }
  totalBytes(): u64 { return <u64>hostMemGetInfoTotal(); }
  canAllocate(bytes: u64): bool { return <u64>hostMemGetInfoFree() >= bytes; }
  adoptMalloc(va: u64, bytes: u64): void { abort("a real device cannot adopt memory from a trace"); }
  adoptReservation(va: u64, bytes: u64): void { abort("a real device cannot adopt memory from a trace"); }
  adoptMapping(va: u64, bytes: u64): i32 { abort("a real device cannot adopt memory from a trace"); return NO_HANDLE; }
}
