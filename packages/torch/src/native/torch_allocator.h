// A PyTorch CUDAPluggableAllocator made of one lakebed policy: the compiled Wasm (wasm_policy.h)
// over a native-cuda DriverCore (CUDA virtual-memory API, or host memory for tests), behind one
// lock. What lives here is what PyTorch's own allocator does around its pools and the policy does
// not model: which stream a pointer was allocated on, which streams used it (record_stream), the
// events that say when that work finished, and the trace and statistics PyTorch would keep.
//
// Streams, as PyTorch's caching allocator (the policy keeps each stream's free blocks apart, so a
// block freed on its own stream is reused only by later work on that stream, in stream order):
//   - free of a block no other stream used: freed at once (free_requested + free_completed);
//   - free of a block named through record_stream: free_requested now, an event recorded on each
//     of those streams, and free_completed (the block goes back to the policy) only once every
//     event completed; pending frees are processed at the next malloc, free or empty_cache, never
//     by synchronizing the device;
//   - memory leaving a stream's hands (unmap, which lets a chunk back another stream's block):
//     every free is noted with its range, its stream and that stream's free count; before an unmap,
//     the frees overlapping the range that no completed fence covers yet make an event be recorded
//     on their streams and waited for (only this thread blocks). A fence covers every free its
//     stream made before it, so memory freed long ago (lakebed moves the chunk of the idle page
//     forecast to be touched last) is unmapped without waiting;
//   - a policy that gives up on pending frees to serve a request (its out-of-memory path, as
//     PyTorch's synchronize_and_free_events) completes them inside the Wasm: their events are
//     waited for before the new pointer is returned, so no kernel queued after it can meet them.
//
// Invariants (checked by the host harness through Check()):
//   INV-TA-1  every pointer in live_ is a block the policy holds allocated, at that driver address;
//   INV-TA-2  every pending_ entry is a block the policy holds pending (free requested), with one
//             unreleased event per stream that used it;
//   INV-TA-3  a pointer is in at most one of live_ and pending_.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "alloc_conf.h"
#include "call_log.h"
#include "device_imports.h"
#include "driver_core.h"
#include "stream_events.h"
#include "trace_log.h"
#include "wasm_policy.h"

namespace lakebed::torch {

struct AllocatorOptions {
  int policyCode = 3;           // core-sim's POLICY_CODES (caching 0, expandable 1, vms 2, lakebed 3)
  std::string conf;             // PYTORCH_CUDA_ALLOC_CONF syntax (alloc_conf.h)
  std::string backend = "cuda";  // "cuda" or "host"
  int device = 0;
  uint64_t capacityBytes = 0;      // the driver's and the policy's capacity; 0: the device's
  uint64_t deviceTotalBytes = 0;   // what the policy sizes reservations from; 0: the driver's total
  bool callLog = false;
  const HostStreamCallbacks* hostStreams = nullptr;
};

// One block of the snapshot's segment list (driver addresses).
struct SnapshotBlock {
  uint64_t addr, size, requested;
  int state;  // 0 active_allocated, 1 active_pending_free, 2 inactive
};
struct SnapshotSegment {
  uint64_t addr, size, stream;
  bool expandable;
  std::vector<SnapshotBlock> blocks;
};

class Allocator {
 public:
  static std::unique_ptr<Allocator> Open(const AllocatorOptions& options, std::string* error);
  ~Allocator();

  // nullptr for 0 bytes; nullptr with *error set when out of memory (PyTorch's message) or broken.
  void* Malloc(uint64_t bytes, uint64_t stream, std::string* error, bool* outOfMemory);
  void Free(void* ptr);
  void RecordStream(void* ptr, uint64_t stream);
  void EmptyCache();
  void SetMemoryFraction(double fraction);

  // The policy's statistics table (core-sim's stats.ts order) and PyTorch's own counters.
  std::vector<double> Stats();
  uint64_t PendingFrees();
  std::vector<TraceEntry> Trace();
  std::vector<SnapshotSegment> Segments();
  CallLog CallsCopy();
  // Nanoseconds each malloc and free took inside the library (the first kLatencyCap of each).
  std::vector<uint32_t> Latencies(bool frees);
  // "" when INV-TA-1..3 hold, else which one broke and where.
  std::string Check();
  // cuMemGetInfo's free bytes when the allocator opened and the least seen since; the driver's
  // physical bytes for the policy now and at peak; fences made before unmaps (events waited for)
  // and the nanoseconds spent waiting in them.
  void Memory(uint64_t out[6]);
  std::string brokenReason();
  uint64_t driverTotalBytes() const { return totalBytes_; }
  std::string description() const { return driver_->description(); }
  DriverCore* driver() { return driver_.get(); }

  static constexpr size_t kLatencyCap = 1 << 22;

 private:
  struct LiveBlock {
    int handle;
    uint64_t modelAddr;  // the address the policy sees, which the trace records
    uint64_t requested;
    uint64_t stream;
    std::vector<uint64_t> usedBy;  // other streams named through record_stream
  };
  struct PendingFree {
    int handle;
    uint64_t ptr, modelAddr, requested, stream;
    std::vector<uint64_t> events;  // one per stream that used the block
  };

  Allocator() = default;
  int StreamId(uint64_t stream);
  void ProcessPendingFrees();           // completes those whose events all completed
  void CompletePendingFreesWaiting();   // waits every pending event, completes all
  void FenceRange(uint64_t va, uint64_t bytes);  // before an unmap of the driver range
  void NoteFreed(uint64_t ptr, uint64_t bytes, int streamId);
  void PruneFreed();
  std::string OutOfMemoryMessage(uint64_t bytes);
  std::string Broken();
  void ResolveTrace();  // segment_alloc entries get their model address (after each policy call)

  std::mutex mu_;
  std::unique_ptr<DriverCore> driver_;
  std::unique_ptr<StreamEvents> events_;
  CallLog calls_;
  TraceLog trace_;
  std::unique_ptr<DeviceImports> imports_;
  std::unique_ptr<WasmPolicy> policy_;
  uint64_t totalBytes_ = 0;
  std::unordered_map<uint64_t, LiveBlock> live_;
  std::vector<PendingFree> pending_;
  std::map<uint64_t, int> streamIds_;
  std::vector<uint64_t> streams_;          // by id
  // Frees not yet known to be finished on the device, by (driver address, stream id): the end of the
  // block's range and the stream's free count at its free. INV-TA-4: an entry's count is above its
  // stream's fenced count (entries at or below it are pruned, at queries and when the table grows).
  struct Freed {
    uint64_t end;
    uint64_t seq;
  };
  std::map<std::pair<uint64_t, int>, Freed> freed_;
  uint64_t maxFreedBytes_ = 0;
  size_t pruneAt_ = 4096;
  std::vector<uint64_t> freeCount_;   // by stream id: frees so far
  std::vector<uint64_t> fencedCount_; // by stream id: frees a completed fence covers
  std::vector<uint32_t> mallocNs_, freeNs_;
  std::string eventError_;
  uint64_t baselineFreeBytes_ = 0;
  uint64_t fenceWaits_ = 0;
  uint64_t fenceNs_ = 0;
};

}  // namespace lakebed::torch
