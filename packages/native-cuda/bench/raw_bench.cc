// Per-call latency of the CUDA driver calls the native backend makes, measured below JavaScript,
// at two layers, with the same plan as gpu-check.mjs runs through the addon:
//   raw   the driver function pointers straight from cuda_loader.cc (dlopen, as the addon does):
//         the floor, what any C program pays;
//   core  DriverCore over the cuda backend: the addon's validation, tables and counters, no JS.
// Prints one JSON document: {"device", "driverVersion", "layers": {"raw": {op: [us, ...]}, ...}}.
// Build (no CUDA toolkit or libcuda needed to build): see bench/prepare-device.sh.
#include <time.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cuda_backend.h"
#include "cuda_loader.h"
#include "driver_core.h"
#include "raw_ops.h"

namespace lakebed {
namespace {

using namespace cu;

constexpr uint64_t kMiB = 1ull << 20;
constexpr int kSmallN = 300;   // samples of each call on 2 MiB / 4 KiB
constexpr int kLargeN = 40;    // samples on 512 MiB
constexpr int kWarmup = 10;    // untimed rounds first: module load, page tables, pools
constexpr int kStitchChunks = 32;
constexpr int kStitchRounds = 20;

class CoreOps final : public Ops {
 public:
  explicit CoreOps(int ordinal) {
    std::unique_ptr<Backend> backend;
    Check(OpenCudaBackend(ordinal, &backend), "open");
    core_ = std::make_unique<DriverCore>(std::move(backend), 0);
  }
  ~CoreOps() override { core_->Teardown(); }

  uint64_t MemCreate(uint64_t bytes) override {
    uint32_t h;
    Check(core_->MemCreate(bytes, &h), "memCreate");
    return h;
  }
  void MemRelease(uint64_t h) override { Check(core_->MemRelease(static_cast<uint32_t>(h)), "memRelease"); }
  uint64_t AddressReserve(uint64_t bytes) override {
    uint64_t va;
    Check(core_->AddressReserve(bytes, 0, &va), "addressReserve");
    return va;
  }
  void AddressFree(uint64_t va, uint64_t bytes) override { Check(core_->AddressFree(va, bytes), "addressFree"); }
  void Map(uint64_t va, uint64_t bytes, uint64_t h) override {
    Check(core_->Map(va, bytes, static_cast<uint32_t>(h), 0), "map");
  }
  void SetAccess(uint64_t va, uint64_t bytes) override { Check(core_->SetAccess(va, bytes), "setAccess"); }
  void Unmap(uint64_t va, uint64_t bytes) override { Check(core_->Unmap(va, bytes), "unmap"); }
  uint64_t Malloc(uint64_t bytes) override {
    uint64_t va;
    Check(core_->Malloc(bytes, &va), "malloc");
    return va;
  }
  void Free(uint64_t va) override { Check(core_->Free(va), "free"); }
  void CopyFromHost(uint64_t va, const void* src, uint64_t bytes) override {
    Check(core_->CopyFromHost(va, src, bytes), "copyFromHost");
  }
  void CopyToHost(uint64_t va, void* dst, uint64_t bytes) override {
    Check(core_->CopyToHost(va, dst, bytes), "copyToHost");
  }
  void Memset(uint64_t va, uint64_t bytes) override { Check(core_->Memset(va, 0x5a, bytes), "memset"); }
  void MemGetInfo() override {
    uint64_t f, t;
    Check(core_->MemGetInfo(&f, &t), "memGetInfo");
  }

 private:
  static void Check(const Status& s, const char* call) {
    if (!s.ok()) Die(std::string(call) + ": " + s.message);
  }
  std::unique_ptr<DriverCore> core_;
};

using Samples = std::map<std::string, std::vector<double>>;

// Times f() into samples[name] after the warm-up rounds.
template <class F>
void Timed(Samples& out, const std::string& name, bool record, F f) {
  const double t0 = NowUs();
  f();
  const double t1 = NowUs();
  if (record) out[name].push_back(t1 - t0);
}

// The plan; gpu-check.mjs runs the same one through the addon (keep the two in step).
Samples RunPlan(Ops& ops) {
  Samples s;
  const std::string small = " 2 MiB", large = " 512 MiB";
  for (const auto& [label, bytes, n] :
       std::vector<std::tuple<std::string, uint64_t, int>>{{small, 2 * kMiB, kSmallN},
                                                           {large, 512 * kMiB, kLargeN}}) {
    for (int i = 0; i < kWarmup + n; i++) {
      const bool rec = i >= kWarmup;
      uint64_t h = 0, va = 0;
      Timed(s, "memCreate" + label, rec, [&] { h = ops.MemCreate(bytes); });
      Timed(s, "memRelease" + label, rec, [&] { ops.MemRelease(h); });
      Timed(s, "addressReserve" + label, rec, [&] { va = ops.AddressReserve(bytes); });
      Timed(s, "addressFree" + label, rec, [&] { ops.AddressFree(va, bytes); });
      Timed(s, "malloc" + label, rec, [&] { va = ops.Malloc(bytes); });
      Timed(s, "free" + label, rec, [&] { ops.Free(va); });
    }
    const uint64_t h = ops.MemCreate(bytes);
    const uint64_t va = ops.AddressReserve(bytes);
    for (int i = 0; i < kWarmup + n; i++) {
      const bool rec = i >= kWarmup;
      Timed(s, "map" + label, rec, [&] { ops.Map(va, bytes, h); });
      Timed(s, "setAccess" + label, rec, [&] { ops.SetAccess(va, bytes); });
      Timed(s, "unmap" + label, rec, [&] { ops.Unmap(va, bytes); });
    }
    ops.AddressFree(va, bytes);
    ops.MemRelease(h);
  }
  {
    const uint64_t va = ops.Malloc(2 * kMiB);
    std::vector<uint8_t> host(4096, 1);
    for (int i = 0; i < kWarmup + kSmallN; i++) {
      const bool rec = i >= kWarmup;
      Timed(s, "copyFromHost 4 KiB", rec, [&] { ops.CopyFromHost(va, host.data(), host.size()); });
      Timed(s, "copyToHost 4 KiB", rec, [&] { ops.CopyToHost(va, host.data(), host.size()); });
      Timed(s, "memset 2 MiB", rec, [&] { ops.Memset(va, 2 * kMiB); });
      Timed(s, "memGetInfo", rec, [&] { ops.MemGetInfo(); });
    }
    ops.Free(va);
  }
  {
    // stitch: map N separate 2 MiB chunks side by side, then one setAccess over the range
    const uint64_t G = 2 * kMiB, range = kStitchChunks * G;
    std::vector<uint64_t> chunks;
    for (int i = 0; i < kStitchChunks; i++) chunks.push_back(ops.MemCreate(G));
    const uint64_t va = ops.AddressReserve(range);
    for (int round = 0; round < 2 + kStitchRounds; round++) {
      const bool rec = round >= 2;
      const double t0 = NowUs();
      for (int i = 0; i < kStitchChunks; i++) ops.Map(va + i * G, G, chunks[i]);
      ops.SetAccess(va, range);
      const double t1 = NowUs();
      if (rec) s["stitch 32 x 2 MiB, per chunk"].push_back((t1 - t0) / kStitchChunks);
      Timed(s, "unmap 32-chunk range", rec, [&] { ops.Unmap(va, range); });
    }
    ops.AddressFree(va, range);
    for (uint64_t h : chunks) ops.MemRelease(h);
  }
  return s;
}

void PrintSamples(const char* layer, const Samples& s, bool last) {
  printf("    \"%s\": {\n", layer);
  size_t k = 0;
  for (const auto& [name, us] : s) {
    printf("      \"%s\": [", name.c_str());
    for (size_t i = 0; i < us.size(); i++) printf("%s%.3f", i ? "," : "", us[i]);
    printf("]%s\n", ++k < s.size() ? "," : "");
  }
  printf("    }%s\n", last ? "" : ",");
}

}  // namespace
}  // namespace lakebed

int main() {
  using namespace lakebed;
  std::string why;
  const CudaApi* api = LoadCuda(&why);
  if (!api) Die(why);
  char name[256] = {0};
  CUdevice dev;
  api->cuDeviceGet(&dev, 0);
  api->cuDeviceGetName(name, sizeof name - 1, dev);
  Samples raw, core;
  {
    RawOps ops(*api, 0);
    raw = RunPlan(ops);
  }
  {
    CoreOps ops(0);
    core = RunPlan(ops);
  }
  printf("{\n  \"device\": \"%s\",\n  \"driverVersion\": %d,\n  \"layers\": {\n", name,
         api->driverVersion);
  PrintSamples("raw", raw, false);
  PrintSamples("core", core, true);
  printf("  }\n}\n");
  return 0;
}
