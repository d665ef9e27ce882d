// Opens libcuda.so.1 with dlopen (never linked: the same addon loads on machines without a GPU)
// and initializes the driver once per process.
#pragma once

#include <string>

#include "cuda_abi.h"

namespace lakebed {

struct CudaApi {
#define LAKEBED_FIELD(field, symbol, type) cu::PFN_##field field = nullptr;
  LAKEBED_CUDA_FUNCTIONS(LAKEBED_FIELD)
#undef LAKEBED_FIELD
  int driverVersion = 0;  // e.g. 13000 for CUDA 13.0
  int deviceCount = 0;
};

// The loaded driver, or nullptr with *why set to one line saying why not: the library is missing,
// it lacks the virtual-memory API, cuInit failed, or there is no device. Loaded on first call and
// kept for the life of the process (unloading libcuda under live contexts is unsafe); thread-safe.
// The library is LAKEBED_LIBCUDA when that is set (a path or a soname), else libcuda.so.1.
const CudaApi* LoadCuda(std::string* why);

// "CUDA_ERROR_INVALID_VALUE (invalid argument)" for a CUresult.
std::string CudaErrorText(const CudaApi& api, cu::CUresult result);
std::string CudaErrorName(const CudaApi& api, cu::CUresult result);

}  // namespace lakebed
