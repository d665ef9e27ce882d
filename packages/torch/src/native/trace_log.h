// The library's own allocator trace: what PyTorch's _record_memory_history would have written
// (torch.cuda.memory._snapshot()'s device_traces), from the calls the library served and the
// device calls the policy made. python/lakebed_torch writes it as a snapshot that `lakebed replay`
// and `lakebed verify` read, so a run under the library can be replayed through the simulator.
//
// Actions are PyTorch's trace actions with packages/traces' numbers (its Action enum, which core-sim's
// replay/actions.ts copies); sizes are the request for alloc/free (as PyTorch records them) and the
// range for segment events; streams are the cudaStream_t values PyTorch passed. Addresses are the
// policy's own (its model address space, core-sim's device/address-model.ts), not the driver's
// pointers PyTorch holds: the simulator replays the trace with the addresses the policy saw, so
// lakebed verify takes the decisions the policy took (best fit breaks ties by address). Maps made
// one after another over adjacent ranges are one segment_map, as PyTorch records a segment's growth. Appended under the allocator's lock, in the order things
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

inline int64_t NowUs() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return std::chrono::duration_cast<std::chrono::microseconds>(now).count();
}

class TraceLog {
 public:
  void Add(TraceAction action, uint64_t addr, uint64_t size, uint64_t stream) {
    if (on_) entries_.push_back({action, addr, size, stream, NowUs()});
  }
  // A segment_map or segment_unmap right after one of the same action and stream that ends where
  // this one starts extends it; else a new entry.
  void AddRange(TraceAction action, uint64_t addr, uint64_t size, uint64_t stream) {
    if (!on_) return;
    if (!entries_.empty()) {
      TraceEntry& last = entries_.back();
      if (last.action == action && last.stream == stream && last.addr + last.size == addr) {
        last.size += size;
        return;
      }
    }
    Add(action, addr, size, stream);
  }
  size_t size() const { return entries_.size(); }
  TraceEntry& at(size_t i) { return entries_[i]; }
  void SetOn(bool on) { on_ = on; }
  const std::vector<TraceEntry>& entries() const { return entries_; }

 private:
  bool on_ = true;
  std::vector<TraceEntry> entries_;
};

}  // namespace lakebed::torch
