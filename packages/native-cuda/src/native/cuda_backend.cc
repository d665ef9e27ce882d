// cuda driver: one driver API call per device call (see backend.h); DriverCore has already checked
// ranges, handles and access, so a failure here is the driver's own.
#include "cuda_backend.h"

#include <cstdint>
#include <string>

#include "cuda_loader.h"

namespace lakebed {

namespace {

using namespace cu;

Status FromCu(const CudaApi& api, const char* call, CUresult r) {
  if (r == CUDA_SUCCESS) return Status::Ok();
  const std::string message = std::string(call) + " failed: " + CudaErrorText(api, r);
  return Status::Make(r == CUDA_ERROR_OUT_OF_MEMORY ? Status::Code::kOutOfMemory
                                                    : Status::Code::kDriver,
                      CudaErrorName(api, r), message);
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaApi* api, int ordinal, CUdevice device, CUcontext context,
              uint64_t granularityBytes, std::string name)
      : api_(*api),
        ordinal_(ordinal),
        device_(device),
        context_(context),
        granularity_(granularityBytes),
        name_(std::move(name)) {}

  const char* kind() const override { return "cuda"; }
  uint64_t granularityBytes() const override { return granularity_; }
  std::string description() const override {
    return name_ + " (device " + std::to_string(ordinal_) + ", CUDA driver " +
           std::to_string(api_.driverVersion / 1000) + "." +
           std::to_string(api_.driverVersion % 1000 / 10) + ")";
  }

  Status memCreate(uint64_t bytes, uint64_t* native) override {
    const CUmemAllocationProp prop = Prop(ordinal_);
    CUmemGenericAllocationHandle handle = 0;
    Status s = Bind();
    if (!s.ok()) return s;
    s = FromCu(api_, "cuMemCreate",
               Drive([&] { return api_.cuMemCreate(&handle, bytes, &prop, 0); }));
    if (s.ok()) *native = handle;
    return s;
  }

  Status memRelease(uint64_t native) override {
    return FromCu(api_, "cuMemRelease", Drive([&] { return api_.cuMemRelease(native); }));
  }

  Status addressReserve(uint64_t bytes, uint64_t alignmentBytes, uint64_t* va) override {
    CUdeviceptr ptr = 0;
    Status s = FromCu(api_, "cuMemAddressReserve", Drive([&] {
                        return api_.cuMemAddressReserve(&ptr, bytes, alignmentBytes, 0, 0);
                      }));
    if (s.ok()) *va = ptr;
    return s;
  }

  Status addressFree(uint64_t va, uint64_t bytes) override {
    return FromCu(api_, "cuMemAddressFree",
                  Drive([&] { return api_.cuMemAddressFree(va, bytes); }));
  }

  Status map(uint64_t va, uint64_t bytes, uint64_t native, uint64_t offsetBytes) override {
    return FromCu(api_, "cuMemMap",
                  Drive([&] { return api_.cuMemMap(va, bytes, offsetBytes, native, 0); }));
  }

  Status setAccess(uint64_t va, uint64_t bytes) override {
    CUmemAccessDesc desc{};
    desc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    desc.location.id = ordinal_;
    desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return FromCu(api_, "cuMemSetAccess",
                  Drive([&] { return api_.cuMemSetAccess(va, bytes, &desc, 1); }));
  }

  Status unmap(uint64_t va, uint64_t bytes) override {
    return FromCu(api_, "cuMemUnmap", Drive([&] { return api_.cuMemUnmap(va, bytes); }));
  }

  Status malloc(uint64_t bytes, uint64_t* va) override {
    CUdeviceptr ptr = 0;
    Status s = Bind();
    if (!s.ok()) return s;
    s = FromCu(api_, "cuMemAlloc", Drive([&] { return api_.cuMemAlloc(&ptr, bytes); }));
    if (s.ok()) *va = ptr;
    return s;
  }

  Status free(uint64_t va, uint64_t) override {
    Status s = Bind();
    if (!s.ok()) return s;
    return FromCu(api_, "cuMemFree", Drive([&] { return api_.cuMemFree(va); }));
  }

  // Copies and memsets; each returns with the bytes in place. A copy to the host is synchronous by
  // itself, and so is a copy from pinned host memory (the host tier's arena: copyIn). A copy from
  // pageable memory returns once the source is staged, with the DMA possibly still running, and
  // cuMemsetD8 on device memory is asynchronous (CUDA's "API synchronization behavior"): those two
  // wait for the context here, since a caller may turn the range read-only or unmap it next.
  // Without the wait, a dedup tenant that filled a chunk and set it read-only at once failed on an
  // H200 now and then: the write still in flight faulted, and the context's next call returned
  // CUDA_ERROR_LAUNCH_FAILED. The arena's copies go without it: they are timed against raw pinned
  // copies (the host tier's bandwidth) and, in the torch library, a context-wide wait would also
  // wait for every stream's kernels.
  Status copyToHost(void* dst, uint64_t va, uint64_t bytes) override {
    Status s = Bind();
    if (!s.ok()) return s;
    return FromCu(api_, "cuMemcpyDtoH", Drive([&] { return api_.cuMemcpyDtoH(dst, va, bytes); }));
  }

  Status copyFromHost(uint64_t va, const void* src, uint64_t bytes) override {
    Status s = Bind();
    if (!s.ok()) return s;
    if (InArena(src, bytes))
      return FromCu(api_, "cuMemcpyHtoD", Drive([&] { return api_.cuMemcpyHtoD(va, src, bytes); }));
    return FromCu(api_, "cuMemcpyHtoD + cuCtxSynchronize",
                  Drive([&] { return Waited(api_.cuMemcpyHtoD(va, src, bytes)); }));
  }

  Status memset(uint64_t va, uint8_t value, uint64_t bytes) override {
    Status s = Bind();
    if (!s.ok()) return s;
    return FromCu(api_, "cuMemsetD8 + cuCtxSynchronize",
                  Drive([&] { return Waited(api_.cuMemsetD8(va, value, bytes)); }));
  }

  Status memGetInfo(uint64_t* freeBytes, uint64_t* totalBytes) override {
    size_t freeB = 0, totalB = 0;
    Status s = Bind();
    if (!s.ok()) return s;
    s = FromCu(api_, "cuMemGetInfo", Drive([&] { return api_.cuMemGetInfo(&freeB, &totalB); }));
    *freeBytes = freeB;
    *totalBytes = totalB;
    return s;
  }

  // Flags 0: pinned and mapped for this context only (no CU_MEMHOSTALLOC_PORTABLE: one driver is
  // one context), not write-combined (the arena is read back by the CPU in data checks).
  Status hostReserve(uint64_t bytes, void** arena) override {
    Status s = Bind();
    if (!s.ok()) return s;
    s = FromCu(api_, "cuMemHostAlloc", Drive([&] { return api_.cuMemHostAlloc(arena, bytes, 0); }));
    if (s.ok()) {
      arena_ = static_cast<const uint8_t*>(*arena);
      arenaBytes_ = bytes;
    }
    return s;
  }

  Status hostRelease(void* arena, uint64_t) override {
    Status s = Bind();
    if (!s.ok()) return s;
    s = FromCu(api_, "cuMemFreeHost", Drive([&] { return api_.cuMemFreeHost(arena); }));
    if (s.ok() && arena == arena_) {
      arena_ = nullptr;
      arenaBytes_ = 0;
    }
    return s;
  }

  Status memCreateShareable(uint64_t bytes, uint64_t* native) override {
    CUmemAllocationProp prop = Prop(ordinal_);
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    CUmemGenericAllocationHandle handle = 0;
    Status s = Bind();
    if (!s.ok()) return s;
    s = FromCu(api_, "cuMemCreate (shareable)",
               Drive([&] { return api_.cuMemCreate(&handle, bytes, &prop, 0); }));
    if (s.ok()) *native = handle;
    return s;
  }

  Status exportHandle(uint64_t native, int* fd) override {
    int out = -1;
    Status s = FromCu(api_, "cuMemExportToShareableHandle", Drive([&] {
                        return api_.cuMemExportToShareableHandle(
                            &out, native, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
                      }));
    if (s.ok()) *fd = out;
    return s;
  }

  Status importHandle(int fd, uint64_t, uint64_t* native) override {
    CUmemGenericAllocationHandle handle = 0;
    Status s = Bind();
    if (!s.ok()) return s;
    // POSIX_FILE_DESCRIPTOR: the descriptor itself is passed as the pointer-sized osHandle.
    void* osHandle = reinterpret_cast<void*>(static_cast<intptr_t>(fd));
    s = FromCu(api_, "cuMemImportFromShareableHandle", Drive([&] {
                 return api_.cuMemImportFromShareableHandle(
                     &handle, osHandle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
               }));
    if (s.ok()) *native = handle;
    return s;
  }

  Status setAccessReadOnly(uint64_t va, uint64_t bytes) override {
    CUmemAccessDesc desc{};
    desc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    desc.location.id = ordinal_;
    desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READ;
    return FromCu(api_, "cuMemSetAccess (read-only)",
                  Drive([&] { return api_.cuMemSetAccess(va, bytes, &desc, 1); }));
  }

  void close() override {
    if (context_) api_.cuDevicePrimaryCtxRelease(device_);
    context_ = nullptr;
  }

  static CUmemAllocationProp Prop(int ordinal) {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = ordinal;
    return prop;
  }

 private:
  // The calls that work through "the current context" (allocation, copies) need ours current on
  // this thread; the JS thread may have had another device's driver made current meanwhile.
  // cuCtxSetCurrent is a thread-local store, far cheaper than any call it precedes. The virtual
  // memory calls (reserve, map, set access, unmap, release) name their device explicitly or act
  // on the process's address space, so they go without it.
  Status Bind() { return FromCu(api_, "cuCtxSetCurrent", api_.cuCtxSetCurrent(context_)); }

  // An asynchronous call's result, then the wait for it: the first error of the two.
  CUresult Waited(CUresult issued) const {
    return issued == CUDA_SUCCESS ? api_.cuCtxSynchronize() : issued;
  }

  // Whether [src, src + bytes) lies in the pinned arena (hostReserve's; DriverCore holds one at a
  // time), whose copies to the device are synchronous with respect to the host.
  bool InArena(const void* src, uint64_t bytes) const {
    const uintptr_t p = reinterpret_cast<uintptr_t>(src);
    const uintptr_t a = reinterpret_cast<uintptr_t>(arena_);
    return arena_ != nullptr && p >= a && bytes <= arenaBytes_ && p - a <= arenaBytes_ - bytes;
  }

  const CudaApi& api_;
  const int ordinal_;
  const CUdevice device_;
  CUcontext context_;
  const uint64_t granularity_;
  const std::string name_;
  const uint8_t* arena_ = nullptr;
  uint64_t arenaBytes_ = 0;
};

}  // namespace

Status OpenCudaBackend(int ordinal, std::unique_ptr<Backend>* out) {
  std::string why;
  const CudaApi* api = LoadCuda(&why);
  if (!api) return Status::Make(Status::Code::kDriver, "UNAVAILABLE", why);
  if (ordinal < 0 || ordinal >= api->deviceCount)
    return Status::Invalid("device " + std::to_string(ordinal) + " does not exist (" +
                           std::to_string(api->deviceCount) + " device(s))");
  CUdevice device = 0;
  Status s = FromCu(*api, "cuDeviceGet", api->cuDeviceGet(&device, ordinal));
  if (!s.ok()) return s;
  int vmm = 0;
  s = FromCu(*api, "cuDeviceGetAttribute",
             api->cuDeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
                                       device));
  if (!s.ok()) return s;
  if (!vmm)
    return Status::Make(Status::Code::kDriver, "CUDA_ERROR_NOT_SUPPORTED",
                        "device " + std::to_string(ordinal) +
                            " does not support the virtual memory management API");
  char name[256] = {0};
  api->cuDeviceGetName(name, sizeof name - 1, device);
  CUcontext context = nullptr;
  s = FromCu(*api, "cuDevicePrimaryCtxRetain", api->cuDevicePrimaryCtxRetain(&context, device));
  if (!s.ok()) return s;
  // From here on a failure must give the context back: nothing of a failed open stays behind.
  s = FromCu(*api, "cuCtxSetCurrent", api->cuCtxSetCurrent(context));
  size_t granularity = 0;
  if (s.ok()) {
    const CUmemAllocationProp prop = CudaBackend::Prop(ordinal);
    s = FromCu(*api, "cuMemGetAllocationGranularity",
               api->cuMemGetAllocationGranularity(&granularity, &prop,
                                                  CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  }
  if (!s.ok()) {
    api->cuDevicePrimaryCtxRelease(device);
    return s;
  }
  *out = std::make_unique<CudaBackend>(api, ordinal, device, context, granularity, name);
  return Status::Ok();
}

}  // namespace lakebed
