// Compiled only when the CUDA toolkit's cuda.h is found at build time (scripts/build.mjs passes
// its folder): proves that the hand-written declarations in cuda_abi.h match the real header, so
// the dlopen'd calls pass exactly what the driver expects. It produces no code.
#include <cuda.h>

#include <cstddef>
#include <string_view>
#include <type_traits>

#include "cuda_abi.h"

namespace lakebed {
namespace {

namespace ours = ::lakebed::cu;

#define LAKEBED_SAME_LAYOUT(T)                                                   \
  static_assert(sizeof(ours::T) == sizeof(::T), #T " size differs from cuda.h"); \
  static_assert(alignof(ours::T) == alignof(::T), #T " alignment differs from cuda.h")
#define LAKEBED_SAME_OFFSET(T, field) \
  static_assert(offsetof(ours::T, field) == offsetof(::T, field), #T "." #field " offset differs")

LAKEBED_SAME_LAYOUT(CUresult);
LAKEBED_SAME_LAYOUT(CUdevice);
LAKEBED_SAME_LAYOUT(CUdeviceptr);
LAKEBED_SAME_LAYOUT(CUcontext);
LAKEBED_SAME_LAYOUT(CUmemGenericAllocationHandle);
LAKEBED_SAME_LAYOUT(CUmemLocation);
LAKEBED_SAME_OFFSET(CUmemLocation, type);
LAKEBED_SAME_OFFSET(CUmemLocation, id);
LAKEBED_SAME_LAYOUT(CUmemAllocationProp);
LAKEBED_SAME_OFFSET(CUmemAllocationProp, type);
LAKEBED_SAME_OFFSET(CUmemAllocationProp, requestedHandleTypes);
LAKEBED_SAME_OFFSET(CUmemAllocationProp, location);
LAKEBED_SAME_OFFSET(CUmemAllocationProp, win32HandleMetaData);
LAKEBED_SAME_OFFSET(CUmemAllocationProp, allocFlags);
LAKEBED_SAME_LAYOUT(CUmemAccessDesc);
LAKEBED_SAME_OFFSET(CUmemAccessDesc, location);
LAKEBED_SAME_OFFSET(CUmemAccessDesc, flags);
static_assert(sizeof(CUmemAllocationGranularity_flags) == sizeof(int), "enum argument size");
static_assert(sizeof(CUdevice_attribute) == sizeof(int), "enum argument size");

static_assert(ours::CUDA_SUCCESS == ::CUDA_SUCCESS, "");
static_assert(ours::CUDA_ERROR_OUT_OF_MEMORY == ::CUDA_ERROR_OUT_OF_MEMORY, "");
static_assert(ours::CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED ==
                  ::CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, "");
static_assert(ours::CU_MEM_ALLOCATION_TYPE_PINNED == ::CU_MEM_ALLOCATION_TYPE_PINNED, "");
static_assert(ours::CU_MEM_HANDLE_TYPE_NONE == ::CU_MEM_HANDLE_TYPE_NONE, "");
static_assert(ours::CU_MEM_LOCATION_TYPE_DEVICE == ::CU_MEM_LOCATION_TYPE_DEVICE, "");
static_assert(ours::CU_MEM_ACCESS_FLAGS_PROT_READWRITE == ::CU_MEM_ACCESS_FLAGS_PROT_READWRITE, "");
static_assert(ours::CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR == ::CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, "");
static_assert(ours::CU_MEM_ACCESS_FLAGS_PROT_READ == ::CU_MEM_ACCESS_FLAGS_PROT_READ, "");
static_assert(ours::CU_MEM_ALLOC_GRANULARITY_MINIMUM == ::CU_MEM_ALLOC_GRANULARITY_MINIMUM, "");

// The symbol each plain name becomes through cuda.h's macros must be the one we dlsym, and the
// function must take as many arguments of the same sizes as ours.
#define LAKEBED_STR2(x) #x
#define LAKEBED_STR(x) LAKEBED_STR2(x)

template <class A, class B>
struct SameShape : std::false_type {};
template <class RA, class... A, class RB, class... B>
struct SameShape<RA (*)(A...), RB (*)(B...)> {
  static constexpr bool value = sizeof(RA) == sizeof(RB) && sizeof...(A) == sizeof...(B) &&
                                ((sizeof(A) == sizeof(B)) && ...);
};

#define LAKEBED_CHECK_FUNCTION(field, symbol, type)                                          \
  static_assert(std::string_view(LAKEBED_STR(field)) == symbol,                              \
                #field ": cuda.h maps it to another symbol than " symbol);                   \
  static_assert(SameShape<decltype(&::field), ours::PFN_##field>::value, #field ": signature differs");
LAKEBED_CUDA_FUNCTIONS(LAKEBED_CHECK_FUNCTION)

}  // namespace
}  // namespace lakebed
