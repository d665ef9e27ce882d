#include "stream_events.h"

#include <dlfcn.h>

#include <mutex>
#include <vector>

namespace lakebed::torch {

namespace {

// The slice of the driver API events need (ABI facts of libcuda since CUDA 4; the versioned
// names are what cuda.h's macros turn the plain ones into, as native-cuda's cuda_abi.h does).
using CUresult = int;
using CUevent = struct CUevent_st*;
using CUstream = struct CUstream_st*;
using CUcontext = struct CUctx_st*;
constexpr CUresult kSuccess = 0;
constexpr CUresult kNotReady = 600;            // CUDA_ERROR_NOT_READY
constexpr unsigned kEventDisableTiming = 0x2;  // CU_EVENT_DISABLE_TIMING

struct CudaEventApi {
  CUresult (*cuDeviceGet)(int*, int);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext*, int);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuEventCreate)(CUevent*, unsigned);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  CUresult (*cuEventQuery)(CUevent);
  CUresult (*cuEventSynchronize)(CUevent);
  CUresult (*cuEventDestroy)(CUevent);
};

template <class F>
bool Find(void* lib, const char* name, F* out, std::string* why) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (!*out) *why = std::string("libcuda.so.1 has no ") + name;
  return *out != nullptr;
}

// Events come from a free list: cuEventCreate costs more than a record, and a training step
// frees thousands of blocks. Each token is the CUevent itself.
class CudaEvents final : public StreamEvents {
 public:
  CudaEvents(const CudaEventApi& api, CUcontext context) : api_(api), context_(context) {}
  ~CudaEvents() override {
    for (CUevent e : free_) api_.cuEventDestroy(e);
  }

  uint64_t Record(uint64_t stream) override {
    api_.cuCtxSetCurrent(context_);  // this thread may not have made the context current yet
    CUevent e = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        e = free_.back();
        free_.pop_back();
      }
    }
    if (!e) Check("cuEventCreate", api_.cuEventCreate(&e, kEventDisableTiming));
    if (!e) return 0;
    Check("cuEventRecord", api_.cuEventRecord(e, reinterpret_cast<CUstream>(stream)));
    return reinterpret_cast<uint64_t>(e);
  }
  bool Query(uint64_t token) override {
    const CUresult r = api_.cuEventQuery(reinterpret_cast<CUevent>(token));
    if (r == kNotReady) return false;
    Check("cuEventQuery", r);
    return true;
  }
  void Wait(uint64_t token) override {
    Check("cuEventSynchronize", api_.cuEventSynchronize(reinterpret_cast<CUevent>(token)));
  }
  void Release(uint64_t token) override {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(reinterpret_cast<CUevent>(token));
  }
  std::string TakeError() override {
    std::string e;
    e.swap(error_);
    return e;
  }

 private:
  void Check(const char* call, CUresult r) {
    if (r != kSuccess && error_.empty()) error_ = std::string(call) + " failed: CUresult " + std::to_string(r);
  }
  const CudaEventApi api_;
  const CUcontext context_;
  std::mutex mu_;
  std::vector<CUevent> free_;
  std::string error_;
};

class HostEvents final : public StreamEvents {
 public:
  explicit HostEvents(const HostStreamCallbacks* callbacks) : cb_(callbacks ? *callbacks : HostStreamCallbacks{}) {}
  uint64_t Record(uint64_t stream) override { return cb_.record ? cb_.record(cb_.ctx, stream) : ++next_; }
  bool Query(uint64_t token) override { return cb_.query ? cb_.query(cb_.ctx, token) != 0 : true; }
  void Wait(uint64_t token) override {
    if (cb_.wait) cb_.wait(cb_.ctx, token);
  }
  void Release(uint64_t token) override {
    if (cb_.release) cb_.release(cb_.ctx, token);
  }

 private:
  const HostStreamCallbacks cb_;
  uint64_t next_ = 0;
};

}  // namespace

std::unique_ptr<StreamEvents> OpenCudaEvents(int ordinal, std::string* why) {
  // libcuda is already open (native-cuda's loader opened it for the driver): take the same copy.
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (!lib) lib = dlopen("libcuda.so.1", RTLD_NOW);
  if (!lib) {
    *why = std::string("cannot open libcuda.so.1: ") + dlerror();
    return nullptr;
  }
  CudaEventApi api{};
  if (!Find(lib, "cuDeviceGet", &api.cuDeviceGet, why) ||
      !Find(lib, "cuDevicePrimaryCtxRetain", &api.cuDevicePrimaryCtxRetain, why) ||
      !Find(lib, "cuCtxSetCurrent", &api.cuCtxSetCurrent, why) ||
      !Find(lib, "cuEventCreate", &api.cuEventCreate, why) ||
      !Find(lib, "cuEventRecord", &api.cuEventRecord, why) ||
      !Find(lib, "cuEventQuery", &api.cuEventQuery, why) ||
      !Find(lib, "cuEventSynchronize", &api.cuEventSynchronize, why) ||
      !Find(lib, "cuEventDestroy_v2", &api.cuEventDestroy, why))
    return nullptr;
  int device = 0;
  CUcontext context = nullptr;
  if (api.cuDeviceGet(&device, ordinal) != kSuccess || api.cuDevicePrimaryCtxRetain(&context, device) != kSuccess) {
    *why = "cannot retain device " + std::to_string(ordinal) + "'s primary context for events";
    return nullptr;
  }
  return std::make_unique<CudaEvents>(api, context);
}

std::unique_ptr<StreamEvents> MakeHostEvents(const HostStreamCallbacks* callbacks) {
  return std::make_unique<HostEvents>(callbacks);
}

}  // namespace lakebed::torch
