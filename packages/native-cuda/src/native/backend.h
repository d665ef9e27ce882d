// The seam between the bookkeeping (driver_core) and a real memory system, like mimalloc's prim.h:
// each method is exactly one driver call (one cuMem* call, or one system call for the host), with
// native values in and out. A backend keeps no tables; DriverCore validates every argument against
// its tables before calling, so a backend may assume ranges are reserved, mapped and accessible.
//
// Addresses and sizes are uint64_t bytes. `native` is the backend's own physical handle: a
// CUmemGenericAllocationHandle for cuda, a memfd file descriptor for host.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>

#include "call_timing.h"
#include "status.h"

namespace lakebed {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const char* kind() const = 0;
  // One line for humans: the device name and driver version, or "host memory (memfd)".
  virtual std::string description() const = 0;
  // Allocation granularity (bytes) for memCreate/map sizes and offsets: 2 MiB on H100 and host.
  virtual uint64_t granularityBytes() const = 0;

  virtual Status memCreate(uint64_t bytes, uint64_t* native) = 0;
  virtual Status memRelease(uint64_t native) = 0;
  virtual Status addressReserve(uint64_t bytes, uint64_t alignmentBytes, uint64_t* va) = 0;
  virtual Status addressFree(uint64_t va, uint64_t bytes) = 0;
  virtual Status map(uint64_t va, uint64_t bytes, uint64_t native, uint64_t offsetBytes) = 0;
  virtual Status setAccess(uint64_t va, uint64_t bytes) = 0;
  virtual Status unmap(uint64_t va, uint64_t bytes) = 0;
  virtual Status malloc(uint64_t bytes, uint64_t* va) = 0;
  virtual Status free(uint64_t va, uint64_t bytes) = 0;
  virtual Status copyToHost(void* dst, uint64_t va, uint64_t bytes) = 0;
  virtual Status copyFromHost(uint64_t va, const void* src, uint64_t bytes) = 0;
  virtual Status memset(uint64_t va, uint8_t value, uint64_t bytes) = 0;
  virtual Status memGetInfo(uint64_t* freeBytes, uint64_t* totalBytes) = 0;
  // The host tier's arena: `bytes` of pinned host memory (cuMemHostAlloc), and giving it back
  // (cuMemFreeHost). Copies between the arena and the device are copyToHost/copyFromHost with the
  // arena as the host side: the same driver function (cuMemcpyDtoH/HtoD), which runs at the
  // pinned rate because the arena is pinned. kOutOfMemory when the host cannot pin that much.
  virtual Status hostReserve(uint64_t bytes, void** arena) = 0;
  virtual Status hostRelease(void* arena, uint64_t bytes) = 0;
  // Sharing chunks between processes (colocate's live half, share_socket.h carries the FDs):
  //   memCreateShareable  cuMemCreate with requestedHandleTypes = POSIX_FILE_DESCRIPTOR (the
  //                       handle type is fixed at creation: a plain chunk can never be exported);
  //                       host: memfd_create, as memCreate (a memfd is its own shareable handle)
  //   exportHandle        cuMemExportToShareableHandle(POSIX_FILE_DESCRIPTOR); host: a dup of the
  //                       memfd. *fd is a new descriptor the caller owns and must close.
  //   importHandle        cuMemImportFromShareableHandle of a received fd; host: a dup of it,
  //                       checked to hold `bytes`. The caller still owns (and closes) `fd`.
  //   setAccessReadOnly   cuMemSetAccess with PROT_READ; host: mprotect(PROT_READ). A write
  //                       through such a mapping is refused by the memory system itself: a CPU
  //                       store faults (SIGSEGV), a CUDA copy or memset is refused, a kernel
  //                       store kills the context.
  virtual Status memCreateShareable(uint64_t bytes, uint64_t* native) = 0;
  virtual Status exportHandle(uint64_t native, int* fd) = 0;
  virtual Status importHandle(int fd, uint64_t bytes, uint64_t* native) = 0;
  virtual Status setAccessReadOnly(uint64_t va, uint64_t bytes) = 0;
  // Called once after DriverCore released everything; the cuda backend drops its context here.
  virtual void close() = 0;

  // Per-call timing (call_timing.h), switched by DriverCore: when on, each driver function a
  // backend call makes goes through Drive(), and driverNs() is their time since ResetDriverNs()
  // (-1: no driver function was called).
  void SetTiming(bool on) { timing_ = on; }
  void ResetDriverNs() { driverNs_ = -1; }
  int64_t driverNs() const { return driverNs_; }

 protected:
  // Makes one driver function call (`call` returns what the driver returned), timed when asked.
  template <class Call>
  auto Drive(Call call) -> decltype(call()) {
    if (!timing_) return call();
    const int64_t t0 = MonotonicNs();
    auto result = call();
    const int err = errno;  // the host driver reads it after a failed system call
    const int64_t t1 = MonotonicNs();
    errno = err;
    driverNs_ = std::max<int64_t>(driverNs_, 0) + (t1 - t0);
    return result;
  }

 private:
  bool timing_ = false;
  int64_t driverNs_ = -1;
};

}  // namespace lakebed
