// What liblakebed_torch.so adds around its policy, per call, on the host driver (no GPU).
//
// One process replays one request sequence (wrapper-bench.mjs writes it from a shared trace: one
// line per request, "a id size stream" or "r id") PASSES times over, two ways, pass by pass in
// alternating order so that load on the machine falls on both alike:
//
//   library    liblakebed_torch.so, dlopen'ed as PyTorch loads it and opened on the host driver
//              with host streams (lakebed_open_host, events complete at once, as the harness's
//              latency mode), driven through PyTorch's entry points lakebed_malloc / lakebed_free;
//   reference  the same core-sim module compiled by wasm2c (the library's own objects, linked in
//              here) over its own DriverCore on the host driver, called straight: per malloc one
//              guarded call of policyMalloc + policyBlockDriverAddress (the least any wrapper must
//              ask: a block and its pointer), per free one guarded policyFree with the handle the
//              bench kept. No lock, no pointer table, no events, trace, fences or latency record;
//   placed     a breakdown: a third instance called as the library calls it, through the library's
//              own WasmPolicy::MallocPlaced and FreeResolved (the block's model address and size
//              besides, which the trace and the fences need), still without the rest of the wrapper.
//
// Each call is timed from outside with the steady clock, on both sides alike. Both sides make the
// same policy decisions (the same requests in the same order; the statistics are compared at the
// end), so library minus reference is the wrapper's time per call. Prints one JSON line: per side
// the first pass (which makes the device calls) and the later ones (a training step's steady
// state), each malloc's and free's median, p99 and mean in nanoseconds; the library's own record of
// its calls (lakebed_latency_read, its time inside the lock) for the later passes; whether the
// statistics agree.
//
//   wrapper_bench LIBRARY.so POLICY PASSES REQUESTS_FILE [library|reference|both]
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "call_log.h"
#include "core_sim.h"
#include "device_imports.h"
#include "host_backend.h"
#include "policy_codes.h"
#include "requests.h"
#include "trace_log.h"
#include "wasm-rt-impl.h"
#include "wasm_policy.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kDeviceTotal = 140ull << 30;  // the H200 the shared traces came from, as the harness's latency mode

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "wrapper_bench: %s\n", why.c_str());
  std::exit(2);
}

using lakebed::torch::harness::Request;

// The requests with a block (a 0-byte malloc has none, and the library records no call for it).
std::vector<Request> ReadRequests(const char* path) {
  std::vector<Request> out;
  for (const Request& r : lakebed::torch::harness::ReadRequests(path))
    if (r.op != 'a' || r.size > 0) out.push_back(r);
  if (out.empty()) Die(std::string("no requests in ") + path);
  return out;
}

// Timings of one side: first pass, later passes.
struct Times {
  std::vector<uint32_t> malloc[2], free[2];
};

uint32_t Ns(Clock::time_point a, Clock::time_point b) {
  return static_cast<uint32_t>(std::min<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count(), UINT32_MAX));
}

// One pass of the requests through malloc/free callables; live blocks at the end are freed untimed.
template <class Malloc, class Free>
void Pass(const std::vector<Request>& requests, int later, Times* t, Malloc malloc, Free free) {
  using Block = decltype(malloc(Request{}));
  std::unordered_map<uint64_t, Block> live;
  live.reserve(1 << 16);
  for (const Request& r : requests) {
    if (r.op == 'a') {
      const auto t0 = Clock::now();
      const Block b = malloc(r);
      t->malloc[later].push_back(Ns(t0, Clock::now()));
      live[r.id] = b;
    } else {
      const auto it = live.find(r.id);
      if (it == live.end()) continue;
      const auto t0 = Clock::now();
      free(it->second);
      t->free[later].push_back(Ns(t0, Clock::now()));
      live.erase(it);
    }
  }
  for (auto& [id, b] : live) free(b);
}

// ---- the library, as PyTorch loads it -----------------------------------------------------------

struct Library {
  int (*open_host)(const char*, const char*, uint64_t, uint64_t, int, uint64_t (*)(void*, uint64_t), int (*)(void*, uint64_t),
                   void (*)(void*, uint64_t), void (*)(void*, uint64_t), void*);
  void* (*malloc)(size_t, int, void*);
  void (*free)(void*, size_t, int, void*);
  void (*close)();
  const char* (*last_error)();
  const char* (*check)();
  int (*stat_count)();
  int (*stats_read)(double*, int);
  uint64_t (*latency_read)(int, uint32_t*, uint64_t);

  explicit Library(const char* path) {
    // RTLD_LOCAL: the library keeps its own copy of the module and the wasm2c runtime, apart from
    // the reference's (this executable exports none of its symbols)
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) Die(std::string("cannot load ") + path + ": " + dlerror());
    Sym(h, "lakebed_open_host", &open_host);
    Sym(h, "lakebed_malloc", &malloc);
    Sym(h, "lakebed_free", &free);
    Sym(h, "lakebed_close", &close);
    Sym(h, "lakebed_last_error", &last_error);
    Sym(h, "lakebed_check", &check);
    Sym(h, "lakebed_stat_count", &stat_count);
    Sym(h, "lakebed_stats_read", &stats_read);
    Sym(h, "lakebed_latency_read", &latency_read);
  }
  template <class F>
  static void Sym(void* h, const char* name, F* out) {
    *out = reinterpret_cast<F>(dlsym(h, name));
    if (!*out) Die(std::string("the library has no ") + name);
  }
  std::vector<double> Stats() {
    std::vector<double> v(static_cast<size_t>(stat_count()));
    stats_read(v.data(), static_cast<int>(v.size()));
    return v;
  }
};

// ---- the reference: the module called straight --------------------------------------------------

class Reference {
 public:
  Reference(int policyCode, bool placedCalls) : placedCalls_(placedCalls) {
    driver_ = std::make_unique<lakebed::DriverCore>(lakebed::MakeHostBackend("wrapper-bench"), 0);
    trace_.SetMaxEntries(0);  // no trace
    imports_ = std::make_unique<lakebed::torch::DeviceImports>(driver_.get(), &calls_, &trace_);
    policy_ = std::make_unique<lakebed::torch::WasmPolicy>(imports_.get());
    lakebed::torch::AllocConf conf;
    if (!policy_->Start(policyCode, conf, 0, kDeviceTotal)) Die("reference: " + policy_->trapMessage());
    instance_ = policy_->instance();
  }
  ~Reference() {
    policy_.reset();
    driver_->Teardown();
  }
  struct Block {
    uint32_t handle;
    uint64_t ptr;
  };
  Block Malloc(uint64_t bytes) {
    Block b{0, 0};
    if (placedCalls_) {
      lakebed::torch::WasmPolicy::Placed placed;
      if (!policy_->MallocPlaced(bytes, 0, &placed) || placed.handle < 0) Die("placed: the policy trapped or found no memory");
      return Block{static_cast<uint32_t>(placed.handle), placed.driverAddr};
    }
    if (wasm_rt_impl_try() != WASM_RT_TRAP_NONE) Die("reference: the policy trapped");
    const int32_t h = static_cast<int32_t>(Z_core_simZ_policyMalloc(instance_, static_cast<double>(bytes), 0));
    if (h < 0) Die("reference: out of memory");
    b.handle = static_cast<uint32_t>(h);
    b.ptr = static_cast<uint64_t>(Z_core_simZ_policyBlockDriverAddress(instance_, b.handle));
    return b;
  }
  void Free(const Block& b) {
    if (placedCalls_) {
      if (!policy_->FreeResolved(static_cast<int>(b.handle), true)) Die("placed: the policy trapped");
      return;
    }
    if (wasm_rt_impl_try() != WASM_RT_TRAP_NONE) Die("reference: the policy trapped");
    Z_core_simZ_policyFree(instance_, b.handle);
  }
  std::vector<double> Stats() {
    std::vector<double> v(static_cast<size_t>(policy_->StatCount()));
    for (size_t i = 0; i < v.size(); i++) v[i] = policy_->Stat(static_cast<int>(i));
    return v;
  }

 private:
  std::unique_ptr<lakebed::DriverCore> driver_;
  lakebed::torch::CallLog calls_;
  lakebed::torch::TraceLog trace_;
  std::unique_ptr<lakebed::torch::DeviceImports> imports_;
  std::unique_ptr<lakebed::torch::WasmPolicy> policy_;
  Z_core_sim_instance_t* instance_ = nullptr;
  const bool placedCalls_;
};

// ---- output -------------------------------------------------------------------------------------

std::string Summary(std::vector<uint32_t> v) {
  if (v.empty()) return "null";
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (uint32_t x : v) sum += x;
  char buf[160];
  std::snprintf(buf, sizeof buf, "{\"n\":%zu,\"median\":%u,\"p99\":%u,\"mean\":%.1f}", v.size(), v[v.size() / 2],
                v[static_cast<size_t>(0.99 * static_cast<double>(v.size() - 1))], sum / static_cast<double>(v.size()));
  return buf;
}

std::string Side(const Times& t) {
  return "{\"firstMalloc\":" + Summary(t.malloc[0]) + ",\"firstFree\":" + Summary(t.free[0]) + ",\"laterMalloc\":" +
         Summary(t.malloc[1]) + ",\"laterFree\":" + Summary(t.free[1]) + "}";
}

int PolicyCode(const char* name) {
  for (const auto& p : lakebed::torch::kPolicyCodes)
    if (std::strcmp(p.name, name) == 0) return p.code;
  Die(std::string("no policy named ") + name);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) Die("usage: wrapper_bench LIBRARY.so POLICY PASSES REQUESTS_FILE [library|reference|both]");
  const char* policy = argv[2];
  const int passes = std::max(2, std::atoi(argv[3]));
  const std::vector<Request> requests = ReadRequests(argv[4]);
  const std::string only = argc > 5 ? argv[5] : "both";
  const bool runLibrary = only != "reference", runReference = only != "library";

  Library lib(argv[1]);
  if (runLibrary && lib.open_host(policy, "", 0, kDeviceTotal, 0, nullptr, nullptr, nullptr, nullptr, nullptr) != 0)
    Die(std::string("lakebed_open_host: ") + lib.last_error());
  std::unique_ptr<Reference> ref, placed;
  if (runReference) ref = std::make_unique<Reference>(PolicyCode(policy), false);
  if (runReference) placed = std::make_unique<Reference>(PolicyCode(policy), true);

  Times libTimes, refTimes, placedTimes;
  for (Times* t : {&libTimes, &refTimes, &placedTimes})
    for (int later = 0; later < 2; later++) {
      t->malloc[later].reserve(requests.size() * static_cast<size_t>(later ? passes - 1 : 1));
      t->free[later].reserve(requests.size() * static_cast<size_t>(later ? passes - 1 : 1));
    }
  auto libraryPass = [&](int later) {
    Pass(
        requests, later, &libTimes,
        [&](const Request& r) {
          void* p = lib.malloc(r.size, 0, reinterpret_cast<void*>(r.stream + 1));
          return p;
        },
        [&](void* p) { lib.free(p, 0, 0, nullptr); });
  };
  auto referencePass = [&](int later) {
    Pass(requests, later, &refTimes, [&](const Request& r) { return ref->Malloc(r.size); },
         [&](const Reference::Block& b) { ref->Free(b); });
    Pass(requests, later, &placedTimes, [&](const Request& r) { return placed->Malloc(r.size); },
         [&](const Reference::Block& b) { placed->Free(b); });
  };
  uint64_t firstPassCalls = 0;
  for (int pass = 0; pass < passes; pass++) {
    const int later = pass > 0 ? 1 : 0;
    // alternate which side runs first, so that a pass's position (caches, the machine's load) favours neither
    if (pass % 2 == 0) {
      if (runLibrary) libraryPass(later);
      if (runReference) referencePass(later);
    } else {
      if (runReference) referencePass(later);
      if (runLibrary) libraryPass(later);
    }
    if (pass == 0) firstPassCalls = libTimes.malloc[0].size();
  }

  std::string out = "{\"policy\":\"" + std::string(policy) + "\",\"passes\":" + std::to_string(passes) +
                    ",\"requests\":" + std::to_string(requests.size());
  if (runLibrary) {
    // the library's own record (inside the lock) of the later passes: a pass frees every block it
    // took (the last ones untimed here, recorded there), so the first pass is its first n of each
    std::vector<uint32_t> inside[2];
    for (int frees = 0; frees < 2; frees++) {
      std::vector<uint32_t> all(std::max<size_t>(1, requests.size() * static_cast<size_t>(passes)));
      all.resize(lib.latency_read(frees, all.data(), all.size()));
      const size_t skip = std::min<size_t>(all.size(), firstPassCalls);
      inside[frees].assign(all.begin() + static_cast<long>(skip), all.end());
    }
    out += ",\"library\":" + Side(libTimes) + ",\"libraryInside\":{\"laterMalloc\":" + Summary(inside[0]) +
           ",\"laterFree\":" + Summary(inside[1]) + "},\"check\":\"" + lib.check() + "\"";
  }
  if (runReference) out += ",\"reference\":" + Side(refTimes) + ",\"placed\":" + Side(placedTimes);
  if (runLibrary && runReference)
    out += std::string(",\"sameStats\":") + (lib.Stats() == ref->Stats() && lib.Stats() == placed->Stats() ? "true" : "false");
  std::puts((out + "}").c_str());
  ref.reset();
  placed.reset();
  if (runLibrary) lib.close();
  return 0;
}
