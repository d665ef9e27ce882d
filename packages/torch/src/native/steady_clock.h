// The steady clock in nanoseconds, the library's one clock read: a malloc's and a free's latency, a
// fence's wait and a device call's time (differences of two reads), and the trace's time (a read plus
// the offset to the system clock taken once at open, torch_allocator.cc). Inline: a malloc and a free
// read it twice each.
#pragma once

#include <chrono>
#include <cstdint>

namespace lakebed::torch {

inline int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace lakebed::torch
