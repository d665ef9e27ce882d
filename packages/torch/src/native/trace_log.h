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
// one after another over adjacent ranges are one segment_map, as PyTorch records a segment's growth.
// Appended under the allocator's lock, in the order things happened; time is microseconds since the
// Unix epoch, like PyTorch's time_us: the time of the library call being served (SetTime), read once
// per call, not once per entry.
//
// On the hot path (every malloc and free appends one or two entries): entries live in blocks of
// kBlockEntries that are never moved, so an append never copies the trace (a vector's growth copied
// all of it, megabytes, inside one free), and each block is zeroed when made, so its page faults
// come together once per 4,096 entries rather than one every hundred appends.
#pragma once

#include <cstdint>
#include <memory>
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
  static constexpr size_t kBlockEntries = 4096;

  // The time of the call being served; entries appended from here on carry it.
  void SetTime(int64_t timeUs) { timeUs_ = timeUs; }
  void Add(TraceAction action, uint64_t addr, uint64_t size, uint64_t stream) {
    if (on_) Append() = TraceEntry{action, addr, size, stream, timeUs_};
  }
  // A segment_map or segment_unmap right after one of the same action and stream that ends where
  // this one starts extends it; else a new entry.
  void AddRange(TraceAction action, uint64_t addr, uint64_t size, uint64_t stream) {
    if (!on_) return;
    if (size_ > 0) {
      TraceEntry& last = at(size_ - 1);
      if (last.action == action && last.stream == stream && last.addr + last.size == addr) {
        last.size += size;
        return;
      }
    }
    Add(action, addr, size, stream);
  }
  size_t size() const { return size_; }
  TraceEntry& at(size_t i) { return blocks_[i / kBlockEntries][i % kBlockEntries]; }
  const TraceEntry& at(size_t i) const { return blocks_[i / kBlockEntries][i % kBlockEntries]; }
  void SetOn(bool on) { on_ = on; }

 private:
  TraceEntry& Append() {
    if (size_ == blocks_.size() * kBlockEntries) blocks_.emplace_back(new TraceEntry[kBlockEntries]());
    TraceEntry& e = at(size_);
    size_++;
    return e;
  }

  bool on_ = true;
  int64_t timeUs_ = 0;
  size_t size_ = 0;
  std::vector<std::unique_ptr<TraceEntry[]>> blocks_;
};

}  // namespace lakebed::torch
