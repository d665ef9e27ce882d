// dlopen/dlsym of the driver API; see cuda_loader.h.
#include "cuda_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace lakebed {

namespace {

struct Loaded {
  CudaApi api;
  bool ok = false;
  std::string why;
};

Loaded Load() {
  Loaded out;
  const char* env = std::getenv("LAKEBED_LIBCUDA");
  const std::string library = env && *env ? env : "libcuda.so.1";
  // RTLD_LOCAL: the driver's symbols stay out of the global namespace of the Node process.
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* err = dlerror();
    out.why = "cannot load " + library + " (no NVIDIA driver on this machine?): " +
              (err ? err : "unknown dlopen error");
    return out;
  }
  CudaApi& api = out.api;
#define LAKEBED_RESOLVE(field, symbol, type)                                           \
  api.field = reinterpret_cast<cu::PFN_##field>(dlsym(lib, symbol));                              \
  if (!api.field) {                                                                    \
    out.why = library + " has no " symbol ": the driver is too old for the CUDA "      \
              "virtual memory API (needs CUDA 10.2 or newer)";                         \
    return out;                                                                        \
  }
  LAKEBED_CUDA_FUNCTIONS(LAKEBED_RESOLVE)
#undef LAKEBED_RESOLVE
  cu::CUresult r = api.cuInit(0);
  if (r != cu::CUDA_SUCCESS) {
    out.why = "cuInit failed: " + CudaErrorText(api, r);
    return out;
  }
  api.cuDriverGetVersion(&api.driverVersion);
  r = api.cuDeviceGetCount(&api.deviceCount);
  if (r != cu::CUDA_SUCCESS) {
    out.why = "cuDeviceGetCount failed: " + CudaErrorText(api, r);
    return out;
  }
  if (api.deviceCount == 0) {
    out.why = "the CUDA driver sees no device";
    return out;
  }
  out.ok = true;
  return out;
}

}  // namespace

const CudaApi* LoadCuda(std::string* why) {
  static std::once_flag once;
  static Loaded* loaded = nullptr;  // never freed: lives as long as the process, like libcuda
  std::call_once(once, [] { loaded = new Loaded(Load()); });
  if (!loaded->ok) {
    *why = loaded->why;
    return nullptr;
  }
  return &loaded->api;
}

std::string CudaErrorName(const CudaApi& api, cu::CUresult result) {
  const char* name = nullptr;
  if (api.cuGetErrorName && api.cuGetErrorName(result, &name) == cu::CUDA_SUCCESS && name)
    return name;
  return "CUresult " + std::to_string(result);
}

std::string CudaErrorText(const CudaApi& api, cu::CUresult result) {
  const char* text = nullptr;
  std::string out = CudaErrorName(api, result);
  if (api.cuGetErrorString && api.cuGetErrorString(result, &text) == cu::CUDA_SUCCESS && text)
    out += std::string(" (") + text + ")";
  return out;
}

}  // namespace lakebed
