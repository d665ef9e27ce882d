// The host tier's copies on a GPU, against the raw driver in the same run (issue 14: the driver's
// copies must reach at least 90% of the raw pinned bandwidth measured beside them), and the
// figures core-sim's cost model charges (assembly/device/cost-model.ts).
//
// A C++ program rather than a Node script through the addon: the raw baseline needs driver calls
// the addon does not make (a cuMemAlloc'd buffer copied to and from cuMemHostAlloc'd memory, and
// asynchronous copies on two streams for "both ways at once"), and one process holding both layers
// times them on the same buffers, interleaved, with one clock. The driver layer here is DriverCore
// over the cuda backend, the code behind the addon's copyOut/copyIn; what the addon adds is one
// N-API call, which gpu-check.mjs measures (well under a microsecond against 40 us for the
// smallest copy here). host-tier-check.mjs times the addon's copies too, in the same device run.
//
// For each size, 2 MiB to 1 GiB, each direction, in rounds that take one sample of each layer in
// turn (so drift hits every layer alike):
//   raw        cuMemcpyDtoH / HtoD between a cuMemAlloc'd buffer and cuMemHostAlloc'd memory
//   raw-vmm    the same raw call on the driver's VMM range (2 MiB chunks mapped side by side):
//              tells the mapping's part from the driver's own
//   driver     DriverCore::CopyOut / CopyIn between that VMM range and the driver's arena
//   duplex     raw, one copy each way started together on two streams (cuMemcpyDtoHAsync and
//              cuMemcpyHtoDAsync), until both are done; the driver's copies are synchronous, one
//              at a time, so it has no duplex of its own
// then, at 2 MiB and 16 MiB (a run of 8 chunks), the copies as a tiering replay makes them
// (Interleaved): DriverCore's copy out of a run at a rotating address to a rotating arena offset,
// its chunks unmapped and released, new chunks created, mapped and given access at the same
// addresses, the copy back; and the raw copy made after 2 ms of the link idle (a replay's copies
// come between the Wasm's and Node's own work, not back to back);
// plus pinning: cuMemHostAlloc and cuMemFreeHost of 256 MiB, 1 GiB and 4 GiB, and DriverCore's
// HostReserve / HostRelease of 1 GiB; and a round trip through the driver checked byte for byte
// (1 GiB of seeded bytes copied out, the chunks unmapped and released, new chunks created and
// mapped at the same addresses and zeroed, the bytes copied back and read).
//
// Prints one JSON document on stdout. Build: see bench/prepare-host-tier.sh (no CUDA toolkit
// needed: libcuda is dlopen'ed, as by the addon).
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_loader.h"
#include "driver_core.h"
#include "raw_ops.h"

namespace lakebed {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kMaxBytes = kGiB;
constexpr uint64_t kChunk = 2 * kMiB;
constexpr int kWarmup = 2;

// The stream calls only this benchmark makes (the addon's copies are synchronous): dlsym'ed from
// the same library cuda_loader.cc opened.
using CUstream = struct CUstream_st*;
struct StreamApi {
  CUresult (*streamCreate)(CUstream*, unsigned int);
  CUresult (*streamDestroy)(CUstream);
  CUresult (*streamSynchronize)(CUstream);
  CUresult (*dtohAsync)(void*, CUdeviceptr, size_t, CUstream);
  CUresult (*htodAsync)(CUdeviceptr, const void*, size_t, CUstream);
};

template <class F>
void Resolve(void* lib, const char* symbol, F* out) {
  *out = reinterpret_cast<F>(dlsym(lib, symbol));
  if (!*out) Die(std::string("libcuda has no ") + symbol);
}

StreamApi LoadStreams() {
  const char* env = getenv("LAKEBED_LIBCUDA");
  void* lib = dlopen(env && *env ? env : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) Die("cannot dlopen libcuda for the stream calls");
  StreamApi s{};
  Resolve(lib, "cuStreamCreate", &s.streamCreate);
  Resolve(lib, "cuStreamDestroy_v2", &s.streamDestroy);
  Resolve(lib, "cuStreamSynchronize", &s.streamSynchronize);
  Resolve(lib, "cuMemcpyDtoHAsync_v2", &s.dtohAsync);
  Resolve(lib, "cuMemcpyHtoDAsync_v2", &s.htodAsync);
  return s;
}

void Ok(const CudaApi& api, CUresult r, const char* what) {
  if (r != CUDA_SUCCESS) Die(std::string(what) + ": " + CudaErrorText(api, r));
}

void Ok(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.message);
}

// Rounds: enough that each size moves a few GiB, at least 5 samples, at most 40.
int RoundsFor(uint64_t bytes) {
  return static_cast<int>(std::clamp<uint64_t>(4 * kGiB / bytes, 5, 40));
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void PrintList(const char* name, const std::vector<double>& v, bool comma) {
  printf("\"%s\": [", name);
  for (size_t i = 0; i < v.size(); i++) printf("%s%.3f", i ? "," : "", v[i]);
  printf("]%s", comma ? ", " : "");
}

uint64_t Mix(uint64_t x) {  // splitmix64: the round trip's seeded bytes
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

class Bench {
 public:
  Bench(const CudaApi& api, DriverCore& core) : api_(api), core_(core), streams_(LoadStreams()) {}

  void Run() {
    SetUp();
    printf("{\n  \"device\": \"%s\",\n  \"driverVersion\": %d,\n", Name().c_str(), api_.driverVersion);
    printf("  \"chunkBytes\": %llu,\n", static_cast<unsigned long long>(kChunk));
    printf("  \"copies\": [\n");
    bool first = true;
    for (uint64_t bytes = 2 * kMiB; bytes <= kMaxBytes; bytes *= 2) {
      printf("%s", first ? "" : ",\n");
      first = false;
      Copies(bytes);
    }
    printf("\n  ],\n  \"interleaved\": [\n");
    Interleaved(2 * kMiB);
    printf(",\n");
    Interleaved(16 * kMiB);
    printf("\n  ],\n");
    Pinning();
    RoundTrip();
    printf("}\n");
    TearDown();
  }

 private:
  std::string Name() {
    CUdevice dev;
    char name[256] = {0};
    api_.cuDeviceGet(&dev, 0);
    api_.cuDeviceGetName(name, sizeof name - 1, dev);
    return name;
  }

  void SetUp() {
    // the driver's side: a VMM range of 2 MiB chunks, with access, and the arena
    Ok(core_.AddressReserve(kMaxBytes, 0, &vmm_), "addressReserve");
    MapChunks();
    Ok(core_.HostReserve(kMaxBytes), "hostReserve");
    arena_ = const_cast<uint8_t*>(core_.hostArena());
    // the raw side: the same context (the driver's primary one), two device buffers and two
    // pinned ones (duplex copies each way from its own pair)
    CUdevice dev;
    Ok(api_, api_.cuDeviceGet(&dev, 0), "cuDeviceGet");
    Ok(api_, api_.cuDevicePrimaryCtxRetain(&ctx_, dev), "cuDevicePrimaryCtxRetain");
    Ok(api_, api_.cuCtxSetCurrent(ctx_), "cuCtxSetCurrent");
    for (int i = 0; i < 2; i++) {
      Ok(api_, api_.cuMemAlloc(&dev_[i], kMaxBytes), "cuMemAlloc");
      Ok(api_, api_.cuMemHostAlloc(&pinned_[i], kMaxBytes, 0), "cuMemHostAlloc");
      Ok(api_, api_.cuMemsetD8(dev_[i], 0x11, kMaxBytes), "cuMemsetD8");
      memset(pinned_[i], 0x22, kMaxBytes);
    }
    Ok(api_, streams_.streamCreate(&stream_[0], 1), "cuStreamCreate");  // 1: non-blocking
    Ok(api_, streams_.streamCreate(&stream_[1], 1), "cuStreamCreate");
  }

  void MapChunks() {
    handles_.clear();
    for (uint64_t off = 0; off < kMaxBytes; off += kChunk) {
      uint32_t h;
      Ok(core_.MemCreate(kChunk, &h), "memCreate");
      Ok(core_.Map(vmm_ + off, kChunk, h, 0), "map");
      handles_.push_back(h);
    }
    Ok(core_.SetAccess(vmm_, kMaxBytes), "setAccess");
  }

  void UnmapChunks() {
    Ok(core_.Unmap(vmm_, kMaxBytes), "unmap");
    for (uint32_t h : handles_) Ok(core_.MemRelease(h), "memRelease");
    handles_.clear();
  }

  void TearDown() {
    streams_.streamDestroy(stream_[0]);
    streams_.streamDestroy(stream_[1]);
    for (int i = 0; i < 2; i++) {
      api_.cuMemFree(dev_[i]);
      api_.cuMemFreeHost(pinned_[i]);
    }
    CUdevice dev;
    api_.cuDeviceGet(&dev, 0);
    api_.cuDevicePrimaryCtxRelease(dev);
  }

  template <class F>
  double Time(F f) {
    const double t0 = NowUs();
    f();
    return NowUs() - t0;
  }

  void Copies(uint64_t bytes) {
    std::vector<double> rawOut, rawIn, vmmOut, vmmIn, drvOut, drvIn, duplex;
    const int rounds = RoundsFor(bytes);
    for (int r = 0; r < kWarmup + rounds; r++) {
      const bool rec = r >= kWarmup;
      auto take = [&](std::vector<double>& into, double us) { if (rec) into.push_back(us); };
      take(rawOut, Time([&] { Ok(api_, api_.cuMemcpyDtoH(pinned_[0], dev_[0], bytes), "raw DtoH"); }));
      take(vmmOut, Time([&] { Ok(api_, api_.cuMemcpyDtoH(pinned_[0], vmm_, bytes), "raw-vmm DtoH"); }));
      take(drvOut, Time([&] { Ok(core_.CopyOut(vmm_, 0, bytes), "copyOut"); }));
      take(rawIn, Time([&] { Ok(api_, api_.cuMemcpyHtoD(dev_[0], pinned_[0], bytes), "raw HtoD"); }));
      take(vmmIn, Time([&] { Ok(api_, api_.cuMemcpyHtoD(vmm_, pinned_[0], bytes), "raw-vmm HtoD"); }));
      take(drvIn, Time([&] { Ok(core_.CopyIn(0, vmm_, bytes), "copyIn"); }));
      take(duplex, Time([&] {
             Ok(api_, api_.cuCtxSetCurrent(ctx_), "cuCtxSetCurrent");
             Ok(api_, streams_.dtohAsync(pinned_[0], dev_[0], bytes, stream_[0]), "DtoHAsync");
             Ok(api_, streams_.htodAsync(dev_[1], pinned_[1], bytes, stream_[1]), "HtoDAsync");
             Ok(api_, streams_.streamSynchronize(stream_[0]), "cuStreamSynchronize");
             Ok(api_, streams_.streamSynchronize(stream_[1]), "cuStreamSynchronize");
           }));
    }
    // bytes per microsecond are MB/s: GB/s is that over 1e3
    auto gbps = [&](const std::vector<double>& us, double moved) { return moved / Median(us) / 1e3; };
    const double b = static_cast<double>(bytes);
    printf("    {\"bytes\": %llu, \"rounds\": %d, \"medianGBps\": {\"rawOut\": %.2f, \"rawIn\": %.2f, "
           "\"rawVmmOut\": %.2f, \"rawVmmIn\": %.2f, \"driverOut\": %.2f, \"driverIn\": %.2f, "
           "\"duplexAggregate\": %.2f}, \"us\": {",
           static_cast<unsigned long long>(bytes), rounds, gbps(rawOut, b), gbps(rawIn, b),
           gbps(vmmOut, b), gbps(vmmIn, b), gbps(drvOut, b), gbps(drvIn, b), gbps(duplex, 2 * b));
    PrintList("rawOut", rawOut, true);
    PrintList("rawIn", rawIn, true);
    PrintList("rawVmmOut", vmmOut, true);
    PrintList("rawVmmIn", vmmIn, true);
    PrintList("driverOut", drvOut, true);
    PrintList("driverIn", drvIn, true);
    PrintList("duplex", duplex, false);
    printf("}}");
    fflush(stdout);
  }

  // The copies as tiering makes them (the header above), against the same run's raw medians.
  void Interleaved(uint64_t bytes) {
    std::vector<double> drvOut, drvIn, idleOut, idleIn;
    const uint64_t chunks = bytes / kChunk;
    const int rounds = 40;
    uint64_t at = 0;
    for (int r = 0; r < kWarmup + rounds; r++) {
      const bool rec = r >= kWarmup;
      auto take = [&](std::vector<double>& into, double us) { if (rec) into.push_back(us); };
      const uint64_t va = vmm_ + at;
      const uint64_t host = kMaxBytes - bytes - at;  // the arena offset moves the other way
      take(drvOut, Time([&] { Ok(core_.CopyOut(va, host, bytes), "copyOut"); }));
      for (uint64_t c = 0; c < chunks; c++) {
        Ok(core_.Unmap(va + c * kChunk, kChunk), "unmap");
        Ok(core_.MemRelease(handles_[at / kChunk + c]), "memRelease");
      }
      for (uint64_t c = 0; c < chunks; c++) {
        uint32_t h;
        Ok(core_.MemCreate(kChunk, &h), "memCreate");
        Ok(core_.Map(va + c * kChunk, kChunk, h, 0), "map");
        Ok(core_.SetAccess(va + c * kChunk, kChunk), "setAccess");
        handles_[at / kChunk + c] = h;
      }
      take(drvIn, Time([&] { Ok(core_.CopyIn(host, va, bytes), "copyIn"); }));
      usleep(2000);
      take(idleOut, Time([&] { Ok(api_, api_.cuMemcpyDtoH(pinned_[0], dev_[0], bytes), "raw DtoH"); }));
      usleep(2000);
      take(idleIn, Time([&] { Ok(api_, api_.cuMemcpyHtoD(dev_[0], pinned_[0], bytes), "raw HtoD"); }));
      at = (at + 37 * kChunk) % (kMaxBytes - bytes);
    }
    auto gbps = [&](const std::vector<double>& us) { return static_cast<double>(bytes) / Median(us) / 1e3; };
    printf("    {\"bytes\": %llu, \"rounds\": %d, \"medianGBps\": {\"driverOut\": %.2f, \"driverIn\": %.2f, "
           "\"rawOutAfterIdle\": %.2f, \"rawInAfterIdle\": %.2f}, \"us\": {",
           static_cast<unsigned long long>(bytes), rounds, gbps(drvOut), gbps(drvIn), gbps(idleOut), gbps(idleIn));
    PrintList("driverOut", drvOut, true);
    PrintList("driverIn", drvIn, true);
    PrintList("rawOutAfterIdle", idleOut, true);
    PrintList("rawInAfterIdle", idleIn, false);
    printf("}}");
    fflush(stdout);
  }

  void Pinning() {
    printf("  \"pinning\": [\n");
    const uint64_t sizes[] = {256 * kMiB, kGiB, 4 * kGiB};
    bool first = true;
    for (uint64_t bytes : sizes) {
      const int n = bytes >= 4 * kGiB ? 1 : 3;
      std::vector<double> alloc, release;
      for (int i = 0; i < n; i++) {
        void* p = nullptr;
        alloc.push_back(Time([&] { Ok(api_, api_.cuMemHostAlloc(&p, bytes, 0), "cuMemHostAlloc"); }));
        release.push_back(Time([&] { Ok(api_, api_.cuMemFreeHost(p), "cuMemFreeHost"); }));
      }
      printf("%s    {\"layer\": \"raw\", \"bytes\": %llu, ", first ? "" : ",\n",
             static_cast<unsigned long long>(bytes));
      PrintList("allocUs", alloc, true);
      PrintList("freeUs", release, false);
      printf("}");
      first = false;
    }
    // the driver's arena: released and reserved again (one at a time), three times
    std::vector<double> reserve, release;
    for (int i = 0; i < 3; i++) {
      release.push_back(Time([&] { Ok(core_.HostRelease(), "hostRelease"); }));
      reserve.push_back(Time([&] { Ok(core_.HostReserve(kGiB), "hostReserve"); }));
    }
    arena_ = const_cast<uint8_t*>(core_.hostArena());
    printf(",\n    {\"layer\": \"driver\", \"bytes\": %llu, ", static_cast<unsigned long long>(kGiB));
    PrintList("allocUs", reserve, true);
    PrintList("freeUs", release, false);
    printf("}\n  ],\n");
    fflush(stdout);
  }

  // 1 GiB of seeded bytes through the arena and back into new chunks at the same addresses.
  void RoundTrip() {
    std::vector<uint64_t> src(kMaxBytes / 8), back(kMaxBytes / 8);
    for (size_t i = 0; i < src.size(); i++) src[i] = Mix(i);
    Ok(core_.CopyFromHost(vmm_, src.data(), kMaxBytes), "copyFromHost");
    const double out = Time([&] { Ok(core_.CopyOut(vmm_, 0, kMaxBytes), "copyOut"); });
    const bool arenaHolds = memcmp(arena_, src.data(), kMaxBytes) == 0;
    const double unmap = Time([&] { UnmapChunks(); });
    const double remap = Time([&] { MapChunks(); });
    Ok(core_.Memset(vmm_, 0, kMaxBytes), "memset");
    const double in = Time([&] { Ok(core_.CopyIn(0, vmm_, kMaxBytes), "copyIn"); });
    Ok(core_.CopyToHost(vmm_, back.data(), kMaxBytes), "copyToHost");
    uint64_t differ = 0;
    const uint8_t* a = reinterpret_cast<const uint8_t*>(src.data());
    const uint8_t* b = reinterpret_cast<const uint8_t*>(back.data());
    for (uint64_t i = 0; i < kMaxBytes; i++) differ += a[i] != b[i];
    printf("  \"roundTrip\": {\"bytes\": %llu, \"chunks\": %zu, \"arenaHoldsTheBytes\": %s, "
           "\"bytesDiffering\": %llu, \"copyOutUs\": %.1f, \"unmapReleaseUs\": %.1f, "
           "\"createMapAccessUs\": %.1f, \"copyInUs\": %.1f}\n",
           static_cast<unsigned long long>(kMaxBytes), handles_.size(), arenaHolds ? "true" : "false",
           static_cast<unsigned long long>(differ), out, unmap, remap, in);
  }

  const CudaApi& api_;
  DriverCore& core_;
  StreamApi streams_;
  CUcontext ctx_ = nullptr;
  CUdeviceptr dev_[2] = {0, 0};
  void* pinned_[2] = {nullptr, nullptr};
  CUstream stream_[2] = {nullptr, nullptr};
  uint64_t vmm_ = 0;
  uint8_t* arena_ = nullptr;
  std::vector<uint32_t> handles_;
};

}  // namespace
}  // namespace lakebed

int main() {
  using namespace lakebed;
  std::string why;
  const CudaApi* api = LoadCuda(&why);
  if (!api) Die(why);
  std::unique_ptr<Backend> backend;
  const Status s = OpenCudaBackend(0, &backend);
  if (!s.ok()) Die("open: " + s.message);
  DriverCore core(std::move(backend), 0);
  Bench(*api, core).Run();
  const TeardownReport r = core.Teardown();
  if (!r.errors.empty()) Die("teardown: " + r.errors.front());
  return 0;
}
