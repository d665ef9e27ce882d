// Host driver: each driver call is one system call with the same meaning as the CUDA call.
//
//   cuMemCreate          memfd_create + ftruncate   a physical chunk; pages come on first touch
//   cuMemRelease         close(fd)                  a mapped memfd lives on until unmapped, just
//                                                   as CUDA frees a released handle at its last unmap
//   cuMemAddressReserve  mmap PROT_NONE anonymous   address space only, aligned by trimming
//   cuMemMap             mmap MAP_FIXED|MAP_SHARED  the chunk's pages at that address, no access yet
//   cuMemSetAccess       mprotect READ|WRITE
//   cuMemUnmap           mmap PROT_NONE anonymous   MAP_FIXED over the range: the reservation stays
//   cuMemAddressFree     munmap
//   cuMemAlloc/Free      mmap anonymous / munmap
//   cuMemsetD8           memset
//   cuMemHostAlloc       mmap anonymous + mlock     mlock'ed when RLIMIT_MEMLOCK allows that much
//                                                   (pinned, as CUDA's); else left pageable
//   cuMemFreeHost        munmap
//   cuMemExportTo...     fcntl(F_DUPFD_CLOEXEC)     the memfd is the shareable handle: a dup of it
//   cuMemImportFrom...   fcntl(F_DUPFD_CLOEXEC)     of the received fd (fstat: it holds the chunk)
//   PROT_READ access     mprotect READ              a store through it faults (SIGSEGV)
//
// Because map is MAP_SHARED of the memfd, one chunk mapped at two addresses is one piece of memory
// seen twice, and one reservation really shows several separate chunks side by side: stitching is
// real here, not simulated. memfds are anonymous files: nothing is left in /dev/shm or anywhere
// else, and the kernel frees them when the process dies, however it dies.
#include "host_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstring>

namespace lakebed {

namespace {

constexpr uint64_t kHostGranularityBytes = 2ull << 20;  // the same 2 MiB as an H100

// strerrorname_np needs glibc 2.32; these are the codes these system calls return.
std::string ErrnoName(int err) {
  switch (err) {
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case EINVAL: return "EINVAL";
    case EBADF: return "EBADF";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EFBIG: return "EFBIG";
    case ENODEV: return "ENODEV";
    case EAGAIN: return "EAGAIN";
    default: return "errno " + std::to_string(err);
  }
}

Status FromErrno(const char* what, int err) {
  const std::string code = ErrnoName(err);
  std::string message = std::string(what) + " failed: " + code + " (" + strerror(err) + ")";
  // each physical chunk is one memfd: a policy holding tens of thousands of 2 MiB chunks (80 GiB)
  // needs as many descriptors, which the process's limit may not allow
  if (err == EMFILE || err == ENFILE) message += "; the host backend holds one file descriptor per chunk: raise the limit (ulimit -n)";
  // ENOMEM from mmap/ftruncate is the host's "device is full"; ENOSPC is tmpfs being full.
  if (err == ENOMEM || err == ENOSPC)
    return Status::Make(Status::Code::kOutOfMemory, code, message);
  return Status::Make(Status::Code::kDriver, code, message);
}

void* Ptr(uint64_t va) { return reinterpret_cast<void*>(static_cast<uintptr_t>(va)); }

class HostBackend final : public Backend {
 public:
  explicit HostBackend(std::string label) : label_(std::move(label)) {}

  const char* kind() const override { return "host"; }
  std::string description() const override { return "host memory (memfd + mmap)"; }
  uint64_t granularityBytes() const override { return kHostGranularityBytes; }

  Status memCreate(uint64_t bytes, uint64_t* native) override {
    const int fd = Drive([&] { return memfd_create(label_.c_str(), MFD_CLOEXEC); });
    if (fd < 0) return FromErrno("memfd_create", errno);
    if (Drive([&] { return ftruncate(fd, static_cast<off_t>(bytes)); }) != 0) {
      const int err = errno;
      ::close(fd);  // roll back: no half-made handle survives a failed call
      return FromErrno("ftruncate", err);
    }
    *native = static_cast<uint64_t>(fd);
    return Status::Ok();
  }

  Status memRelease(uint64_t native) override {
    if (Drive([&] { return ::close(static_cast<int>(native)); }) != 0)
      return FromErrno("close", errno);
    return Status::Ok();
  }

  Status addressReserve(uint64_t bytes, uint64_t alignmentBytes, uint64_t* va) override {
    // Reservations are aligned at least to the granularity, as CUDA's are; mmap gives only page
    // alignment, so ask for more and trim both ends.
    const uint64_t align = alignmentBytes > kHostGranularityBytes ? alignmentBytes
                                                                   : kHostGranularityBytes;
    const uint64_t span = bytes + align;
    void* p = Drive([&] {
      return mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    });
    if (p == MAP_FAILED) return FromErrno("mmap (reserve)", errno);
    const uint64_t raw = reinterpret_cast<uintptr_t>(p);
    const uint64_t base = (raw + align - 1) & ~(align - 1);
    if (base > raw) Drive([&] { return munmap(p, base - raw); });
    const uint64_t tail = raw + span - (base + bytes);
    if (tail > 0) Drive([&] { return munmap(Ptr(base + bytes), tail); });
    *va = base;
    return Status::Ok();
  }

  Status addressFree(uint64_t va, uint64_t bytes) override {
    if (Drive([&] { return munmap(Ptr(va), bytes); }) != 0) return FromErrno("munmap", errno);
    return Status::Ok();
  }

  Status map(uint64_t va, uint64_t bytes, uint64_t native, uint64_t offsetBytes) override {
    // PROT_NONE: like cuMemMap, a new mapping is not accessible until setAccess.
    void* p = Drive([&] {
      return mmap(Ptr(va), bytes, PROT_NONE, MAP_SHARED | MAP_FIXED, static_cast<int>(native),
                  static_cast<off_t>(offsetBytes));
    });
    if (p == MAP_FAILED) return FromErrno("mmap (map)", errno);
    return Status::Ok();
  }

  Status setAccess(uint64_t va, uint64_t bytes) override {
    if (Drive([&] { return mprotect(Ptr(va), bytes, PROT_READ | PROT_WRITE); }) != 0)
      return FromErrno("mprotect", errno);
    return Status::Ok();
  }

  Status unmap(uint64_t va, uint64_t bytes) override {
    // munmap would open a hole another mmap could take; mapping fresh PROT_NONE pages over the
    // range in one call keeps it reserved, as cuMemUnmap turns a mapping back into a reservation.
    void* p = Drive([&] {
      return mmap(Ptr(va), bytes, PROT_NONE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    });
    if (p == MAP_FAILED) return FromErrno("mmap (unmap)", errno);
    return Status::Ok();
  }

  Status malloc(uint64_t bytes, uint64_t* va) override {
    void* p = Drive([&] {
      return mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    });
    if (p == MAP_FAILED) return FromErrno("mmap (malloc)", errno);
    *va = reinterpret_cast<uintptr_t>(p);
    return Status::Ok();
  }

  Status free(uint64_t va, uint64_t bytes) override {
    if (Drive([&] { return munmap(Ptr(va), bytes); }) != 0) return FromErrno("munmap", errno);
    return Status::Ok();
  }

  // DriverCore checked that the whole range is mapped with access, so these cannot fault.
  Status copyToHost(void* dst, uint64_t va, uint64_t bytes) override {
    Drive([&] { return memcpy(dst, Ptr(va), bytes); });
    return Status::Ok();
  }

  Status copyFromHost(uint64_t va, const void* src, uint64_t bytes) override {
    Drive([&] { return memcpy(Ptr(va), src, bytes); });
    return Status::Ok();
  }

  Status memset(uint64_t va, uint8_t value, uint64_t bytes) override {
    Drive([&] { return ::memset(Ptr(va), value, bytes); });
    return Status::Ok();
  }

  Status memGetInfo(uint64_t* freeBytes, uint64_t* totalBytes) override {
    struct sysinfo info;
    if (Drive([&] { return sysinfo(&info); }) != 0) return FromErrno("sysinfo", errno);
    *freeBytes = static_cast<uint64_t>(info.freeram) * info.mem_unit;
    *totalBytes = static_cast<uint64_t>(info.totalram) * info.mem_unit;
    return Status::Ok();
  }

  // Pinning what the limit allows and no more: an unprivileged process's RLIMIT_MEMLOCK is
  // usually a few MiB, and a refused mlock there says nothing about memory, so the arena is then
  // plain anonymous memory (the copies are the same memcpy). Where the limit allows and mlock
  // still fails, the host has no memory to pin: out of memory, as cuMemHostAlloc would say.
  Status hostReserve(uint64_t bytes, void** arena) override {
    void* p = Drive([&] {
      return mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    });
    if (p == MAP_FAILED) return FromErrno("mmap (host arena)", errno);
    struct rlimit limit;
    if (getrlimit(RLIMIT_MEMLOCK, &limit) == 0 &&
        (limit.rlim_cur == RLIM_INFINITY || bytes <= limit.rlim_cur)) {
      if (Drive([&] { return mlock(p, bytes); }) != 0) {
        const int err = errno;
        munmap(p, bytes);
        return FromErrno("mlock (host arena)", err == EAGAIN ? ENOMEM : err);
      }
    }
    *arena = p;
    return Status::Ok();
  }

  Status hostRelease(void* arena, uint64_t bytes) override {
    if (Drive([&] { return munmap(arena, bytes); }) != 0) return FromErrno("munmap (host arena)", errno);
    return Status::Ok();
  }

  Status memCreateShareable(uint64_t bytes, uint64_t* native) override {
    return memCreate(bytes, native);
  }

  Status exportHandle(uint64_t native, int* fd) override {
    const int out = Drive([&] { return fcntl(static_cast<int>(native), F_DUPFD_CLOEXEC, 0); });
    if (out < 0) return FromErrno("fcntl (export)", errno);
    *fd = out;
    return Status::Ok();
  }

  Status importHandle(int fd, uint64_t bytes, uint64_t* native) override {
    struct stat st;
    if (fstat(fd, &st) != 0) return FromErrno("fstat (import)", errno);
    if (static_cast<uint64_t>(st.st_size) < bytes)
      return Status::Make(Status::Code::kDriver, "EINVAL",
                          "the received descriptor holds " + std::to_string(st.st_size) +
                              " bytes, fewer than the chunk's " + std::to_string(bytes));
    const int out = Drive([&] { return fcntl(fd, F_DUPFD_CLOEXEC, 0); });
    if (out < 0) return FromErrno("fcntl (import)", errno);
    *native = static_cast<uint64_t>(out);
    return Status::Ok();
  }

  Status setAccessReadOnly(uint64_t va, uint64_t bytes) override {
    if (Drive([&] { return mprotect(Ptr(va), bytes, PROT_READ); }) != 0)
      return FromErrno("mprotect (read-only)", errno);
    return Status::Ok();
  }

  void close() override {}

 private:
  std::string label_;
};

}  // namespace

std::unique_ptr<Backend> MakeHostBackend(const std::string& label) {
  return std::make_unique<HostBackend>(label);
}

}  // namespace lakebed
