// The slice of the CUDA driver API (libcuda.so.1) that lakebed calls, declared by hand so the addon
// builds where no CUDA toolkit is installed (CI): libcuda is opened with dlopen at run time and is
// never linked, so only these types, constants and function shapes are needed at build time.
// When the toolkit's cuda.h is present at build time, cuda_abi_check.cc compiles too and
// static_asserts that every struct layout, constant and versioned symbol name below matches it.
// Values are ABI facts of the driver API, stable since CUDA 10.2 (the virtual memory API).
#pragma once

#include <cstddef>

namespace lakebed {
namespace cu {

using CUresult = int;  // an enum in cuda.h: int-sized on every supported ABI
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st*;
using CUmemGenericAllocationHandle = unsigned long long;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
constexpr int CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED = 102;
constexpr int CU_MEM_ALLOCATION_TYPE_PINNED = 1;
constexpr int CU_MEM_HANDLE_TYPE_NONE = 0;
constexpr int CU_MEM_LOCATION_TYPE_DEVICE = 1;
constexpr int CU_MEM_ACCESS_FLAGS_PROT_READWRITE = 3;
// Sharing a chunk between processes (colocate's live half): a chunk made with this handle type
// can be exported as a file descriptor and imported by another process; a reader maps it with
// PROT_READ (writes through that mapping are refused by the driver, measured on the H100).
constexpr int CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR = 1;
constexpr int CU_MEM_ACCESS_FLAGS_PROT_READ = 1;
constexpr int CU_MEM_ALLOC_GRANULARITY_MINIMUM = 0;

struct CUmemLocation {
  int type;
  int id;
};

struct CUmemAllocationProp {
  int type;
  int requestedHandleTypes;
  CUmemLocation location;
  void* win32HandleMetaData;
  struct {
    unsigned char compressionType;
    unsigned char gpuDirectRDMACapable;
    unsigned short usage;
    unsigned char reserved[4];
  } allocFlags;
};

struct CUmemAccessDesc {
  CUmemLocation location;
  int flags;
};

// X(field, exported symbol, return/argument shape). The symbol is what cuda.h's macros turn the
// plain name into (cuMemAlloc -> cuMemAlloc_v2): dlsym must ask for the versioned name.
#define LAKEBED_CUDA_FUNCTIONS(X)                                                                 \
  X(cuInit, "cuInit", CUresult (*)(unsigned int))                                                 \
  X(cuDriverGetVersion, "cuDriverGetVersion", CUresult (*)(int*))                                 \
  X(cuDeviceGetCount, "cuDeviceGetCount", CUresult (*)(int*))                                     \
  X(cuDeviceGet, "cuDeviceGet", CUresult (*)(CUdevice*, int))                                     \
  X(cuDeviceGetName, "cuDeviceGetName", CUresult (*)(char*, int, CUdevice))                       \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute", CUresult (*)(int*, int, CUdevice))              \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", CUresult (*)(CUcontext*, CUdevice))     \
  X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", CUresult (*)(CUdevice))            \
  X(cuCtxSetCurrent, "cuCtxSetCurrent", CUresult (*)(CUcontext))                                  \
  X(cuCtxSynchronize, "cuCtxSynchronize", CUresult (*)())                                          \
  X(cuGetErrorName, "cuGetErrorName", CUresult (*)(CUresult, const char**))                       \
  X(cuGetErrorString, "cuGetErrorString", CUresult (*)(CUresult, const char**))                   \
  X(cuMemGetAllocationGranularity, "cuMemGetAllocationGranularity",                               \
    CUresult (*)(size_t*, const CUmemAllocationProp*, int))                                       \
  X(cuMemCreate, "cuMemCreate",                                                                   \
    CUresult (*)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,               \
                 unsigned long long))                                                             \
  X(cuMemRelease, "cuMemRelease", CUresult (*)(CUmemGenericAllocationHandle))                     \
  X(cuMemAddressReserve, "cuMemAddressReserve",                                                   \
    CUresult (*)(CUdeviceptr*, size_t, size_t, CUdeviceptr, unsigned long long))                  \
  X(cuMemAddressFree, "cuMemAddressFree", CUresult (*)(CUdeviceptr, size_t))                      \
  X(cuMemMap, "cuMemMap",                                                                         \
    CUresult (*)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle, unsigned long long))  \
  X(cuMemUnmap, "cuMemUnmap", CUresult (*)(CUdeviceptr, size_t))                                  \
  X(cuMemSetAccess, "cuMemSetAccess",                                                             \
    CUresult (*)(CUdeviceptr, size_t, const CUmemAccessDesc*, size_t))                            \
  X(cuMemAlloc, "cuMemAlloc_v2", CUresult (*)(CUdeviceptr*, size_t))                              \
  X(cuMemFree, "cuMemFree_v2", CUresult (*)(CUdeviceptr))                                         \
  X(cuMemcpyHtoD, "cuMemcpyHtoD_v2", CUresult (*)(CUdeviceptr, const void*, size_t))              \
  X(cuMemcpyDtoH, "cuMemcpyDtoH_v2", CUresult (*)(void*, CUdeviceptr, size_t))                    \
  X(cuMemsetD8, "cuMemsetD8_v2", CUresult (*)(CUdeviceptr, unsigned char, size_t))                \
  X(cuMemGetInfo, "cuMemGetInfo_v2", CUresult (*)(size_t*, size_t*))                            \
  X(cuMemHostAlloc, "cuMemHostAlloc", CUresult (*)(void**, size_t, unsigned int))                 \
  X(cuMemFreeHost, "cuMemFreeHost", CUresult (*)(void*))                                         \
  X(cuMemExportToShareableHandle, "cuMemExportToShareableHandle",                                 \
    CUresult (*)(void*, CUmemGenericAllocationHandle, int, unsigned long long))                   \
  X(cuMemImportFromShareableHandle, "cuMemImportFromShareableHandle",                             \
    CUresult (*)(CUmemGenericAllocationHandle*, void*, int))

// PFN_cuInit, PFN_cuMemCreate, ...: one function-pointer type per entry above.
#define LAKEBED_PFN(field, symbol, type) using PFN_##field = type;
LAKEBED_CUDA_FUNCTIONS(LAKEBED_PFN)
#undef LAKEBED_PFN

}  // namespace cu
}  // namespace lakebed
