#include "wasm_policy.h"

#include <mutex>

#include "core_sim.h"
#include "device_imports.h"
#include "wasm-rt-impl.h"

// The instance's import objects are ours to define: wasm2c only passes the pointers through.
struct Z_env_instance_t {
  lakebed::torch::WasmPolicy* policy;
};

namespace {

// AssemblyScript's abort(message, fileName, line, column): the strings are UTF-16 in linear
// memory, their byte length in the word before them. ASCII is all a message needs.
std::string ReadAsString(Z_core_sim_instance_t* instance, uint32_t ptr) {
  if (ptr == 0) return "";
  wasm_rt_memory_t* memory = Z_core_simZ_memory(instance);
  if (ptr < 4 || ptr > memory->size) return "?";
  uint32_t bytes = 0;
  memcpy(&bytes, memory->data + ptr - 4, 4);
  if (static_cast<uint64_t>(ptr) + bytes > memory->size) return "?";
  std::string s;
  for (uint32_t i = 0; i + 1 < bytes; i += 2) {
    const uint16_t unit = static_cast<uint16_t>(memory->data[ptr + i] | (memory->data[ptr + i + 1] << 8));
    s += unit < 128 ? static_cast<char>(unit) : '?';
  }
  return s;
}

std::once_flag g_runtimeOnce;

}  // namespace

extern "C" void Z_envZ_abort(struct Z_env_instance_t* env, u32 message, u32 file, u32 line, u32 column) {
  env->policy->SetAbortMessage(ReadAsString(env->policy->instance(), message) + " (" +
                               ReadAsString(env->policy->instance(), file) + ":" + std::to_string(line) +
                               ":" + std::to_string(column) + ")");
  wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
}

namespace lakebed::torch {

WasmPolicy::WasmPolicy(DeviceImports* imports) : instance_(new Z_core_sim_instance_t()), imports_(imports) {
  std::call_once(g_runtimeOnce, [] {
    wasm_rt_init();
    Z_core_sim_init_module();
  });
}

WasmPolicy::~WasmPolicy() {
  if (instance_->w2c_memory.data) Z_core_sim_free(instance_);
  delete static_cast<Z_device_instance_t*>(deviceContext_);
  delete static_cast<Z_env_instance_t*>(envContext_);
  delete instance_;
}

template <class F>
bool WasmPolicy::Guarded(F f) {
  if (broken_) return false;
  const wasm_rt_trap_t trap = static_cast<wasm_rt_trap_t>(wasm_rt_impl_try());
  if (trap != WASM_RT_TRAP_NONE) {
    broken_ = true;
    std::string why = imports_->TakeError();
    if (why.empty()) why = abortMessage_;
    trapMessage_ = std::string("the policy's Wasm trapped (") + wasm_rt_strerror(trap) + ")" +
                   (why.empty() ? "" : ": " + why);
    return false;
  }
  f();
  return true;
}

bool WasmPolicy::Start(int policyCode, const AllocConf& conf, uint64_t capacityBytes, uint64_t deviceTotalBytes) {
  auto* device = new Z_device_instance_t{imports_};
  auto* env = new Z_env_instance_t{this};
  deviceContext_ = device;
  envContext_ = env;
  return Guarded([&] {
    Z_core_sim_instantiate(instance_, device, env);
    Z_core_simZ_setup(instance_, static_cast<u32>(policyCode), *Z_core_simZ_DEVICE_IMPORTED(instance_),
                      static_cast<double>(capacityBytes), static_cast<double>(deviceTotalBytes));
    // the order and arguments of core-sim's applyConf (src/wasm.ts)
    Z_core_simZ_setConf(instance_, conf.maxSplitSizeBytes, conf.maxNonSplitRoundingBytes,
                        conf.garbageCollectionThreshold, conf.expandableSegments ? 1 : 0,
                        conf.largeSegmentSizeBytes);
    for (int b = 0; b < kRoundupBuckets; b++)
      Z_core_simZ_setRoundupDivisions(instance_, static_cast<u32>(b), static_cast<u32>(conf.roundupDivisions[b]));
    Z_core_simZ_setVmsConf(instance_, static_cast<u32>(conf.vmmDefragment), conf.fragLimitBytes,
                           static_cast<u32>(conf.defragLevel), conf.reuseLimit, conf.autoGCGiB,
                           static_cast<u32>(conf.reAlloc));
    Z_core_simZ_setLakebedConf(instance_, static_cast<u32>(conf.lakebedSlackPermille),
                               static_cast<u32>(conf.lakebedFitWindow), static_cast<u32>(conf.lakebedLargePageMiB));
    Z_core_simZ_start(instance_, 0, 0);
  });
}

bool WasmPolicy::MallocPlaced(uint64_t requestBytes, int stream, Placed* out) {
  return Guarded([&] {
    out->handle = static_cast<int32_t>(Z_core_simZ_policyMalloc(instance_, static_cast<double>(requestBytes), static_cast<u32>(stream)));
    if (out->handle >= 0) {
      const u32 h = static_cast<u32>(out->handle);
      const double driver = Z_core_simZ_policyBlockDriverAddress(instance_, h);
      out->driverAddr = driver > 0 ? static_cast<uint64_t>(driver) : 0;
      out->modelAddr = static_cast<uint64_t>(Z_core_simZ_policyBlockAddress(instance_, h));
      out->bytes = static_cast<uint64_t>(Z_core_simZ_policyBlockSize(instance_, h));
    }
    if (imports_->HasPendingTrace()) imports_->ResolvePending();
  });
}
bool WasmPolicy::FreeResolved(int handle, bool complete) {
  return Guarded([&] {
    if (complete) Z_core_simZ_policyFree(instance_, static_cast<u32>(handle));
    else Z_core_simZ_policyFreeRequest(instance_, static_cast<u32>(handle));
    if (imports_->HasPendingTrace()) imports_->ResolvePending();
  });
}
bool WasmPolicy::FreeComplete(int handle) {
  return Guarded([&] { Z_core_simZ_policyFreeComplete(instance_, static_cast<u32>(handle)); });
}
bool WasmPolicy::EmptyCache() {
  return Guarded([&] { Z_core_simZ_policyEmptyCache(instance_); });
}
bool WasmPolicy::SetCapacity(uint64_t bytes) {
  return Guarded([&] { Z_core_simZ_policySetCapacity(instance_, static_cast<double>(bytes)); });
}
uint64_t WasmPolicy::BlockSize(int handle) {
  double v = 0;
  Guarded([&] { v = Z_core_simZ_policyBlockSize(instance_, static_cast<u32>(handle)); });
  return static_cast<uint64_t>(v);
}
uint64_t WasmPolicy::BlockAddress(int handle) {
  double v = 0;
  Guarded([&] { v = Z_core_simZ_policyBlockAddress(instance_, static_cast<u32>(handle)); });
  return static_cast<uint64_t>(v);
}
double WasmPolicy::ModelAddressNested(double driverVa) { return Z_core_simZ_deviceModelAddress(instance_, driverVa); }
bool WasmPolicy::Run(const std::function<void()>& f) { return Guarded(f); }
uint64_t WasmPolicy::BlockDriverAddress(int handle) {
  double v = 0;
  Guarded([&] { v = Z_core_simZ_policyBlockDriverAddress(instance_, static_cast<u32>(handle)); });
  return v > 0 ? static_cast<uint64_t>(v) : 0;
}

int WasmPolicy::StatCount() {
  u32 n = 0;
  Guarded([&] { n = Z_core_simZ_statCount(instance_); });
  return static_cast<int>(n);
}
double WasmPolicy::Stat(int index) {
  double v = 0;
  Guarded([&] { v = Z_core_simZ_statValue(instance_, static_cast<u32>(index)); });
  return v;
}

bool WasmPolicy::WriteLayout(Layout* out) {
  return Guarded([&] {
    out->segments = static_cast<int>(Z_core_simZ_layoutWrite(instance_));
    out->blocks = static_cast<int>(Z_core_simZ_layoutBlockCount(instance_));
  });
}

const uint8_t* WasmPolicy::Memory(uint32_t offset) const {
  return Z_core_simZ_memory(instance_)->data + offset;
}

}  // namespace lakebed::torch
