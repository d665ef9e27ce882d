// Optional per-call timing inside the native layer, for benchmarks that ask for it (off by
// default; when off it costs one branch per call). Two figures per device call, taken as the
// backend makes it:
//   coreNs    the whole DriverCore operation: validation, fault injection, the driver call, tables;
//   driverNs  the driver function alone (the cuMem* call through its function pointer, or the
//             system calls of the host driver), -1 when the call was refused before the driver.
// The clock is clock_gettime(CLOCK_MONOTONIC), the clock raw_replay times the raw driver with.
#pragma once

#include <time.h>

#include <algorithm>
#include <cstdint>

#include "call_kinds.h"

namespace lakebed {

inline int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct CallTime {
  CallKind kind;
  int64_t coreNs;
  int64_t driverNs;
};

// What one clock read costs here: the median gap between back-to-back reads (each timed figure
// holds two reads' worth of it).
inline double ClockReadNs() {
  constexpr int kPairs = 1001;
  int64_t gaps[kPairs];
  for (int i = 0; i < kPairs; i++) {
    const int64_t a = MonotonicNs();
    gaps[i] = MonotonicNs() - a;
  }
  std::nth_element(gaps, gaps + kPairs / 2, gaps + kPairs);
  return static_cast<double>(gaps[kPairs / 2]);
}

}  // namespace lakebed
