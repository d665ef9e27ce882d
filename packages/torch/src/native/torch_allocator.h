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
//     every free is noted with its range, its stream and that stream's free count, and every
//     kMarkEvery-th free of a stream records a marker event on it. Before an unmap, the frees
//     overlapping the range that no completed fence covers yet are fenced: markers that completed
//     cover every free before them (queried, no wait); else the thread waits for the first marker
//     recorded after those frees, else for a new event (only this thread blocks, and only until
//     the stream passed that point, not until its queue is empty). So memory freed long ago
//     (lakebed moves the chunk of the idle page forecast to be touched last) is unmapped without
//     waiting;
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
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "alloc_conf.h"
#include "call_log.h"
#include "device_imports.h"
#include "driver_core.h"
#include "freed_index.h"
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
  // the trace's cap (trace_log.h): the newest this many entries are kept, 0 records none
  uint64_t traceMaxEntries = TraceLog::kDefaultMaxEntries;
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
// What a snapshot reads from the allocator, copied together under one acquisition of its lock, so
// that every piece is of the same moment: the segments and their blocks are the state the kept trace
// ends in, and the marks and the dropped count are the kept trace's. (PyTorch's threads allocate
// while a snapshot is taken: the autograd engine from its own thread, an out-of-memory observer
// dumping one mid-step; pieces read under the lock one at a time came from different moments.)
struct Snapshot {
  std::vector<SnapshotSegment> segments;
  std::vector<TraceEntry> trace;  // the kept entries, oldest first
  uint64_t traceDropped = 0;
  std::vector<uint64_t> emptyCacheMarks;  // indices into trace (TraceLog::EmptyCacheMarks)
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
  uint64_t TraceCount();
  std::vector<TraceEntry> TraceRead(uint64_t start, uint64_t count);
  // entries the trace's cap dropped (the oldest), and where the kept trace's empty_cache calls began
  uint64_t TraceDropped();
  std::vector<uint64_t> EmptyCacheMarks();
  // A snapshot's pieces at one moment. The lock is held for the copies alone: the trace's room is
  // allocated and its pages touched before (again, larger, should the trace have outgrown it).
  void TakeSnapshot(Snapshot* out);
  CallLog CallsCopy();
  // Nanoseconds each malloc and free took inside the library (the first kLatencyCap of each).
  std::vector<uint32_t> Latencies(bool frees);
  // "" when INV-TA-1..3 hold, else which one broke and where.
  std::string Check();
  // cuMemGetInfo's free bytes when the allocator opened and the least seen since; the driver's
  // physical bytes for the policy now and at peak; fences made before unmaps (events waited for)
  // and the nanoseconds spent waiting in them; the device calls the policy made and the
  // nanoseconds spent in them (fences not included).
  void Memory(uint64_t out[8]);
  std::string brokenReason();
  uint64_t driverTotalBytes() const { return totalBytes_; }
  std::string description() const { return driver_->description(); }
  // The device index the allocator serves (PyTorch's, as CUDA_VISIBLE_DEVICES numbers them): every
  // request must name it, since the memory is mapped for that device alone.
  int device() const { return device_; }
  DriverCore* driver() { return driver_.get(); }

  static constexpr size_t kLatencyCap = 1 << 22;

 private:
  struct LiveBlock {
    int handle;
    uint64_t modelAddr;  // the address the policy sees, which the trace records
    uint64_t requested;
    uint64_t bytes;  // the block's size in the policy (fixed while it is allocated)
    uint64_t stream;
    int streamId;
    std::vector<uint64_t> usedBy;  // other streams named through record_stream
  };
  struct PendingFree {
    int handle;
    uint64_t ptr, modelAddr, requested, stream;
    std::vector<uint64_t> events;  // one per stream that used the block
  };

  Allocator() = default;
  int StreamId(uint64_t stream);      // the last stream's id is kept: most calls are on one stream
  int StreamIdSlow(uint64_t stream);
  void StartCall(int64_t nowNs);       // the trace's time for the entries of this call
  void ProcessPendingFrees();           // completes those whose events all completed
  void CompletePendingFreesWaiting();   // waits every pending event, completes all
  void FenceRange(uint64_t va, uint64_t bytes);  // before an unmap of the driver range
  void NoteFreed(uint64_t ptr, uint64_t bytes, int streamId);
  void PruneFreed();
  void MaybeMark(int streamId);   // a marker after every kMarkEvery-th free of the stream
  void PollMarkers(size_t id);    // completed markers advance the stream's fenced count
  std::string OutOfMemoryMessage(uint64_t bytes);
  std::string Broken();
  void ResolveTrace();  // segment_alloc entries get their model address (after each policy call that may make one)
  std::vector<SnapshotSegment> SegmentsLocked();  // the segments and their blocks now (mu_ held)

  std::mutex mu_;
  std::unique_ptr<DriverCore> driver_;
  std::unique_ptr<StreamEvents> events_;
  CallLog calls_;
  TraceLog trace_;
  std::unique_ptr<DeviceImports> imports_;
  std::unique_ptr<WasmPolicy> policy_;
  uint64_t totalBytes_ = 0;
  int device_ = 0;  // PyTorch's device index, for the out-of-memory message
  std::unordered_map<uint64_t, LiveBlock> live_;
  // live_'s nodes that a free took out, kept for the next malloc's entry: a malloc and a free each
  // took a trip through the heap for the node (at most as many as blocks were ever live at once)
  std::vector<std::unordered_map<uint64_t, LiveBlock>::node_type> spareLive_;
  std::vector<PendingFree> pending_;
  std::map<uint64_t, int> streamIds_;
  uint64_t lastStream_ = 0;
  int lastStreamId_ = -1;
  int64_t epochOffsetNs_ = 0;  // system clock minus steady clock, at open: the trace's time from one clock read
  std::vector<uint64_t> streams_;          // by id
  // Frees not yet known to be finished on the device, by (driver address, stream id): the end of the
  // block's range and the stream's free count at its free. INV-TA-4: an entry's count is above its
  // stream's fenced count (entries at or below it are pruned, at queries and when the table grows).
  // The keys in address order (freed_, for the fences' range searches) and each key's entry
  // (freedIndex_, one probe for a free's update: freed_index.h says why); both hold the same keys,
  // and every erase goes through EraseFreed.
  struct Freed {
    uint64_t end;
    uint64_t seq;
  };
  using FreedKey = std::pair<uint64_t, int>;
  std::set<FreedKey> freed_;
  FreedIndex<Freed> freedIndex_;
  const Freed& FreedAt(const FreedKey& key) { return *freedIndex_.Find(key.first, key.second); }
  std::set<FreedKey>::iterator EraseFreed(std::set<FreedKey>::iterator it);
  uint64_t maxFreedBytes_ = 0;
  size_t pruneAt_ = 4096;
  std::vector<uint64_t> freeCount_;   // by stream id: frees so far
  std::vector<uint64_t> fencedCount_; // by stream id: frees a completed fence covers
  // Markers (INV-TA-5): by stream id, oldest first, the events recorded after every kMarkEvery-th
  // free with the stream's free count then, each above the stream's fenced count (completed ones
  // are polled away); at most kMaxMarkers each. Every 256th free keeps the event record (a driver
  // call of about a microsecond) out of the free latency's 99th percentile.
  struct Marker {
    uint64_t event;
    uint64_t seq;
  };
  static constexpr uint64_t kMarkEvery = 256;
  static constexpr size_t kMaxMarkers = 64;
  std::vector<std::deque<Marker>> markers_;
  std::vector<uint32_t> mallocNs_, freeNs_;
  std::string eventError_;
  uint64_t baselineFreeBytes_ = 0;
  uint64_t fenceWaits_ = 0;
  uint64_t fenceNs_ = 0;
};

}  // namespace lakebed::torch
