// The one table of device calls. Counters, fault injection, error messages and the JS-visible list
// of call kinds are all generated from it, so adding a call here is the only place a kind is named.
//
// Columns: X(enum name, JS name, what an injected fault looks like)
//   kOom:   the call reports out-of-memory (memCreate/malloc/addressReserve return the OOM code);
//           that is what cuMemCreate/cuMemAlloc/cuMemAddressReserve return when the device is full.
//   kError: the call throws the JS-defined DeviceError, as any other failed driver call does.
// The rows down to hostRelease are the calls core-sim's Device makes, in its CALL_* order
// (assembly/device/device.ts); the pattern calls after them are the live replay's data checks.
#pragma once

#include <cstddef>

namespace lakebed {

enum class FaultShape { kOom, kError };

#define LAKEBED_CALL_KINDS(X)                        \
  X(kMemCreate, "memCreate", FaultShape::kOom)       \
  X(kMemRelease, "memRelease", FaultShape::kError)   \
  X(kAddressReserve, "addressReserve", FaultShape::kOom) \
  X(kAddressFree, "addressFree", FaultShape::kError) \
  X(kMap, "map", FaultShape::kError)                 \
  X(kSetAccess, "setAccess", FaultShape::kError)     \
  X(kUnmap, "unmap", FaultShape::kError)             \
  X(kMalloc, "malloc", FaultShape::kOom)             \
  X(kFree, "free", FaultShape::kError)               \
  X(kCopyToHost, "copyToHost", FaultShape::kError)   \
  X(kCopyFromHost, "copyFromHost", FaultShape::kError) \
  X(kMemset, "memset", FaultShape::kError)           \
  X(kMemGetInfo, "memGetInfo", FaultShape::kError)   \
  X(kHostReserve, "hostReserve", FaultShape::kOom)   \
  X(kCopyOut, "copyOut", FaultShape::kError)         \
  X(kCopyIn, "copyIn", FaultShape::kError)           \
  X(kHostRelease, "hostRelease", FaultShape::kError) \
  X(kFillPattern, "fillPattern", FaultShape::kError) \
  X(kCheckPattern, "checkPattern", FaultShape::kError)

enum class CallKind : int {
#define LAKEBED_ENUM(id, js, shape) id,
  LAKEBED_CALL_KINDS(LAKEBED_ENUM)
#undef LAKEBED_ENUM
};

constexpr size_t kCallKindCount = 0
#define LAKEBED_COUNT(id, js, shape) +1
    LAKEBED_CALL_KINDS(LAKEBED_COUNT)
#undef LAKEBED_COUNT
    ;

inline const char* CallName(CallKind kind) {
  static const char* const names[] = {
#define LAKEBED_NAME(id, js, shape) js,
      LAKEBED_CALL_KINDS(LAKEBED_NAME)
#undef LAKEBED_NAME
  };
  return names[static_cast<int>(kind)];
}

inline FaultShape CallFaultShape(CallKind kind) {
  static const FaultShape shapes[] = {
#define LAKEBED_SHAPE(id, js, shape) shape,
      LAKEBED_CALL_KINDS(LAKEBED_SHAPE)
#undef LAKEBED_SHAPE
  };
  return shapes[static_cast<int>(kind)];
}

// Returns false when `name` is no call kind.
inline bool CallKindFromName(const char* name, CallKind* out) {
  for (size_t i = 0; i < kCallKindCount; i++) {
    const char* candidate = CallName(static_cast<CallKind>(i));
    const char* a = candidate;
    const char* b = name;
    while (*a && *a == *b) { a++; b++; }
    if (*a == 0 && *b == 0) { *out = static_cast<CallKind>(i); return true; }
  }
  return false;
}

}  // namespace lakebed
