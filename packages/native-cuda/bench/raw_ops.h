// The raw CUDA driver calls the native backend's benchmarks measure against: the function pointers
// straight from cuda_loader.cc (dlopen, as the addon does), what any C program pays. Shared by
// raw_bench.cc (fixed sizes) and raw_replay.cc (the very calls a live replay made).
#pragma once

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cuda_loader.h"

namespace lakebed {

using namespace cu;

inline double NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

[[noreturn]] inline void Die(const std::string& what) {
  fprintf(stderr, "raw: %s\n", what.c_str());
  exit(1);
}

// The device calls, as one interface over both layers; any failure ends the benchmark.
class Ops {
 public:
  virtual ~Ops() = default;
  virtual uint64_t MemCreate(uint64_t bytes) = 0;
  virtual void MemRelease(uint64_t h) = 0;
  virtual uint64_t AddressReserve(uint64_t bytes) = 0;
  virtual void AddressFree(uint64_t va, uint64_t bytes) = 0;
  virtual void Map(uint64_t va, uint64_t bytes, uint64_t h) = 0;
  virtual void SetAccess(uint64_t va, uint64_t bytes) = 0;
  virtual void Unmap(uint64_t va, uint64_t bytes) = 0;
  virtual uint64_t Malloc(uint64_t bytes) = 0;
  virtual void Free(uint64_t va) = 0;
  virtual void CopyFromHost(uint64_t va, const void* src, uint64_t bytes) = 0;
  virtual void CopyToHost(uint64_t va, void* dst, uint64_t bytes) = 0;
  virtual void Memset(uint64_t va, uint64_t bytes) = 0;
  virtual void MemGetInfo() = 0;
};

class RawOps final : public Ops {
 public:
  RawOps(const CudaApi& api, int ordinal) : api_(api), ordinal_(ordinal) {
    CUdevice dev;
    Check(api_.cuDeviceGet(&dev, ordinal), "cuDeviceGet");
    device_ = dev;
    Check(api_.cuDevicePrimaryCtxRetain(&ctx_, dev), "cuDevicePrimaryCtxRetain");
    Check(api_.cuCtxSetCurrent(ctx_), "cuCtxSetCurrent");
  }
  ~RawOps() override { api_.cuDevicePrimaryCtxRelease(device_); }

  uint64_t MemCreate(uint64_t bytes) override {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = ordinal_;
    CUmemGenericAllocationHandle h;
    Check(api_.cuMemCreate(&h, bytes, &prop, 0), "cuMemCreate");
    return h;
  }
  void MemRelease(uint64_t h) override { Check(api_.cuMemRelease(h), "cuMemRelease"); }
  uint64_t AddressReserve(uint64_t bytes) override {
    CUdeviceptr p;
    Check(api_.cuMemAddressReserve(&p, bytes, 0, 0, 0), "cuMemAddressReserve");
    return p;
  }
  void AddressFree(uint64_t va, uint64_t bytes) override {
    Check(api_.cuMemAddressFree(va, bytes), "cuMemAddressFree");
  }
  void Map(uint64_t va, uint64_t bytes, uint64_t h) override {
    Check(api_.cuMemMap(va, bytes, 0, h, 0), "cuMemMap");
  }
  void SetAccess(uint64_t va, uint64_t bytes) override {
    CUmemAccessDesc desc{};
    desc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    desc.location.id = ordinal_;
    desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    Check(api_.cuMemSetAccess(va, bytes, &desc, 1), "cuMemSetAccess");
  }
  void Unmap(uint64_t va, uint64_t bytes) override { Check(api_.cuMemUnmap(va, bytes), "cuMemUnmap"); }
  uint64_t Malloc(uint64_t bytes) override {
    CUdeviceptr p;
    Check(api_.cuMemAlloc(&p, bytes), "cuMemAlloc");
    return p;
  }
  void Free(uint64_t va) override { Check(api_.cuMemFree(va), "cuMemFree"); }
  void CopyFromHost(uint64_t va, const void* src, uint64_t bytes) override {
    Check(api_.cuMemcpyHtoD(va, src, bytes), "cuMemcpyHtoD");
  }
  void CopyToHost(uint64_t va, void* dst, uint64_t bytes) override {
    Check(api_.cuMemcpyDtoH(dst, va, bytes), "cuMemcpyDtoH");
  }
  void Memset(uint64_t va, uint64_t bytes) override {
    Check(api_.cuMemsetD8(va, 0x5a, bytes), "cuMemsetD8");
  }
  void MemGetInfo() override {
    size_t f, t;
    Check(api_.cuMemGetInfo(&f, &t), "cuMemGetInfo");
  }

 private:
  void Check(CUresult r, const char* call) {
    if (r != CUDA_SUCCESS) Die(std::string(call) + ": " + CudaErrorText(api_, r));
  }
  const CudaApi& api_;
  const int ordinal_;
  CUdevice device_ = 0;
  CUcontext ctx_ = nullptr;
};

}  // namespace lakebed
