// The library's own allocator trace: what PyTorch's _record_memory_history would have written
// (torch.cuda.memory._snapshot()'s device_traces), from the calls the library served and the
// device calls the policy made. python/lakebed_torch writes it as a snapshot that `lakebed replay`
// and `lakebed verify` read, so a run under the library can be replayed through the simulator.
//
// Actions are PyTorch's trace actions with packages/traces' numbers (its Action enum, which core-sim's
// replay/actions.ts copies); addresses are the driver's (the pointers PyTorch saw), sizes the request
// for alloc/free (as PyTorch records them) and the range for segment events; streams are the
// cudaStream_t values PyTorch passed. Appended under the allocator's lock, in the order things
// happened; time is microseconds since the Unix epoch, like PyTorch's time_us.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

namespace lakebed::torch {

enum class TraceAction : uint8_t {
  kAlloc = 1,
  kFreeRequested = 2,
  kFreeCompleted = 3,
  kSegmentAlloc = 4,
  kSegmentFree = 5,
  kSegmentMap = 6,
  kSegmentUnmap = 7,
  kOom = 8,
};

struct TraceEntry {
  TraceAction action;
  uint64_t addr;
  uint64_t size;
  uint64_t stream;
  int64_t timeUs;
};

class TraceLog {
 public:
  void Add(TraceAction action, uint64_t addr, uint64_t size, uint64_t stream) {
    if (!on_) return;
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    entries_.push_back({action, addr, size, stream, std::chrono::duration_cast<std::chrono::microseconds>(now).count()});
  }
  void SetOn(bool on) { on_ = on; }
  const std::vector<TraceEntry>& entries() const { return entries_; }

 private:
  bool on_ = true;
  std::vector<TraceEntry> entries_;
};

}  // namespace lakebed::torch
