#include "torch_allocator.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cuda_backend.h"
#include "host_backend.h"
#include "steady_clock.h"

namespace lakebed::torch {

namespace {

// core-sim's stats.ts indices the allocator reads (the whole table goes to Python by name).
constexpr int kStatReservedAll = (5 * 3 + 0) * 4;   // reserved_bytes.all.current
constexpr int kStatAllocatedAll = (4 * 3 + 0) * 4;  // allocated_bytes.all.current
constexpr int kNumSyncAllStreams = 118;

// PyTorch's format_size (c10/cuda/CUDACachingAllocator.cpp), for its out-of-memory message.
std::string FormatSize(uint64_t bytes) {
  char buf[64];
  if (bytes <= 1024) snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  else if (bytes <= 1048576) snprintf(buf, sizeof buf, "%.2f KiB", bytes / 1024.0);
  else if (bytes <= 1073741824) snprintf(buf, sizeof buf, "%.2f MiB", bytes / 1048576.0);
  else snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  return buf;
}

void Note(std::vector<uint32_t>* v, int64_t ns) {
  if (v->size() < Allocator::kLatencyCap) v->push_back(static_cast<uint32_t>(std::min<int64_t>(ns, UINT32_MAX)));
}

}  // namespace

std::unique_ptr<Allocator> Allocator::Open(const AllocatorOptions& options, std::string* error) {
  AllocConf conf;
  if (!ParseAllocConf(options.conf, &conf, error)) return nullptr;
  std::unique_ptr<Backend> backend;
  if (options.backend == "host") {
    backend = MakeHostBackend("lakebed-torch:" + std::to_string(getpid()));
  } else if (options.backend == "cuda") {
    const Status s = OpenCudaBackend(options.device, &backend);
    if (!s.ok()) {
      *error = "cuda driver: " + s.message;
      return nullptr;
    }
  } else {
    *error = "backend must be cuda or host, got '" + options.backend + "'";
    return nullptr;
  }
  std::unique_ptr<Allocator> a(new Allocator());
  a->driver_ = std::make_unique<DriverCore>(std::move(backend), options.capacityBytes);
  if (options.backend == "cuda") {
    a->events_ = OpenCudaEvents(options.device, error);
    if (!a->events_) return nullptr;
  } else {
    a->events_ = MakeHostEvents(options.hostStreams);
  }
  uint64_t freeBytes = 0, totalBytes = 0;
  const Status s = a->driver_->MemGetInfo(&freeBytes, &totalBytes);
  if (!s.ok()) {
    *error = "memGetInfo: " + s.message;
    return nullptr;
  }
  a->baselineFreeBytes_ = freeBytes;
  a->device_ = options.device;
  a->totalBytes_ = options.deviceTotalBytes ? options.deviceTotalBytes : totalBytes;
  a->calls_.SetOn(options.callLog);
  a->trace_.SetMaxEntries(options.traceMaxEntries);
  a->imports_ = std::make_unique<DeviceImports>(a->driver_.get(), &a->calls_, &a->trace_);
  Allocator* self = a.get();
  a->imports_->SetUnmapFence([self](uint64_t va, uint64_t bytes) { self->FenceRange(va, bytes); });
  a->policy_ = std::make_unique<WasmPolicy>(a->imports_.get());
  a->imports_->SetModelAddress([self](double va) { return self->policy_->ModelAddressNested(va); });
  // the device model holds max(total, capacity), as the simulator's (core-sim's setup)
  const double fractionBytes = conf.perProcessMemoryFraction > 0 ? conf.perProcessMemoryFraction * a->totalBytes_ : 0;
  const uint64_t capacity = options.capacityBytes ? options.capacityBytes : static_cast<uint64_t>(fractionBytes);
  if (!a->policy_->Start(options.policyCode, conf, capacity, a->totalBytes_)) {
    *error = a->policy_->trapMessage();
    return nullptr;
  }
  // reserved whole (address space only: pages are touched as entries come), so that no append on
  // the hot path ever copies them
  a->mallocNs_.reserve(kLatencyCap);
  a->freeNs_.reserve(kLatencyCap);
  a->live_.reserve(1 << 14);
  a->spareLive_.reserve(1 << 14);
  const int64_t wallNs = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  a->epochOffsetNs_ = wallNs - SteadyNs();
  return a;
}

Allocator::~Allocator() {
  // Teardown releases every mapping, reservation, handle and malloc the driver holds (the
  // "never leaks" contract); PyTorch never frees its allocator before exit, tests do.
  for (auto& p : pending_)
    for (uint64_t e : p.events) events_->Release(e);
  for (auto& q : markers_)
    for (const Marker& m : q) events_->Release(m.event);
  policy_.reset();
  if (driver_) driver_->Teardown();
}

int Allocator::StreamId(uint64_t stream) {
  if (stream == lastStream_ && lastStreamId_ >= 0) return lastStreamId_;
  lastStream_ = stream;
  lastStreamId_ = StreamIdSlow(stream);
  return lastStreamId_;
}

int Allocator::StreamIdSlow(uint64_t stream) {
  const auto it = streamIds_.find(stream);
  if (it != streamIds_.end()) return it->second;
  const int id = static_cast<int>(streams_.size());
  streamIds_.emplace(stream, id);
  streams_.push_back(stream);
  freeCount_.push_back(0);
  fencedCount_.push_back(0);
  markers_.emplace_back();
  return id;
}

void Allocator::ResolveTrace() {
  if (imports_->HasPendingTrace()) policy_->Run([this] { imports_->ResolvePending(); });
}

void Allocator::StartCall(int64_t nowNs) { trace_.SetTime((nowNs + epochOffsetNs_) / 1000); }

std::string Allocator::Broken() {
  return "lakebed allocator is out of service: " + policy_->trapMessage();
}

void* Allocator::Malloc(uint64_t bytes, uint64_t stream, std::string* error, bool* outOfMemory) {
  *outOfMemory = false;
  if (bytes == 0) return nullptr;  // as PyTorch's allocator: no block, no trace entry
  const int64_t t0 = SteadyNs();
  std::lock_guard<std::mutex> lock(mu_);
  if (policy_->broken()) {
    *error = Broken();
    return nullptr;
  }
  StartCall(t0);
  ProcessPendingFrees();
  const int sid = StreamId(stream);
  imports_->SetCurrentStream(stream);
  const double syncsBefore = pending_.empty() ? 0 : policy_->Stat(kNumSyncAllStreams);
  WasmPolicy::Placed placed;
  if (!policy_->MallocPlaced(bytes, sid, &placed)) {
    *error = Broken();
    return nullptr;
  }
  if (!pending_.empty() && policy_->Stat(kNumSyncAllStreams) > syncsBefore) {
    // The policy completed every pending free to serve this request (its out-of-memory path):
    // their streams' work must be done before anyone uses memory they held.
    for (auto& p : pending_) {
      for (uint64_t e : p.events) {
        events_->Wait(e);
        events_->Release(e);
      }
      trace_.Add(TraceAction::kFreeCompleted, p.modelAddr, p.requested, p.stream);
    }
    pending_.clear();
  }
  if (placed.handle < 0) {
    trace_.Add(TraceAction::kOom, 0, bytes, stream);
    *outOfMemory = true;
    *error = OutOfMemoryMessage(bytes);
    return nullptr;
  }
  const uint64_t ptr = placed.driverAddr;
  LiveBlock block{placed.handle, placed.modelAddr, bytes, placed.bytes, stream, sid, {}};
  if (spareLive_.empty()) {
    live_[ptr] = std::move(block);
  } else {
    auto node = std::move(spareLive_.back());
    spareLive_.pop_back();
    node.key() = ptr;
    node.mapped() = std::move(block);
    auto put = live_.insert(std::move(node));
    if (!put.inserted) {  // as live_[ptr] = block would (the pointer is never live twice: INV-TA-3)
      put.position->second = std::move(put.node.mapped());
      spareLive_.push_back(std::move(put.node));
    }
  }
  trace_.Add(TraceAction::kAlloc, placed.modelAddr, bytes, stream);
  Note(&mallocNs_, SteadyNs() - t0);
  return reinterpret_cast<void*>(ptr);
}

void Allocator::Free(void* p) {
  if (!p) return;
  const int64_t t0 = SteadyNs();
  std::lock_guard<std::mutex> lock(mu_);
  if (policy_->broken()) return;
  const uint64_t ptr = reinterpret_cast<uint64_t>(p);
  const auto it = live_.find(ptr);
  if (it == live_.end()) return;  // not ours (PyTorch frees only what it allocated here)
  StartCall(t0);
  auto node = live_.extract(it);
  const LiveBlock& block = node.mapped();
  imports_->SetCurrentStream(block.stream);
  // noted before the policy frees: the free may unmap this very range, and its fence must see it
  NoteFreed(ptr, block.bytes, block.streamId);
  MaybeMark(block.streamId);
  trace_.Add(TraceAction::kFreeRequested, block.modelAddr, block.requested, block.stream);
  if (block.usedBy.empty()) {
    trace_.Add(TraceAction::kFreeCompleted, block.modelAddr, block.requested, block.stream);
    policy_->FreeResolved(block.handle, true);
  } else {
    PendingFree pending{block.handle, ptr, block.modelAddr, block.requested, block.stream, {}};
    // the other streams' work is over once these events completed, before the block is free
    for (uint64_t s : block.usedBy) pending.events.push_back(events_->Record(s));
    policy_->FreeResolved(block.handle, false);
    pending_.push_back(std::move(pending));
  }
  spareLive_.push_back(std::move(node));
  ProcessPendingFrees();
  Note(&freeNs_, SteadyNs() - t0);
}

void Allocator::RecordStream(void* p, uint64_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = live_.find(reinterpret_cast<uint64_t>(p));
  if (it == live_.end() || stream == it->second.stream) return;
  auto& used = it->second.usedBy;
  if (std::find(used.begin(), used.end(), stream) == used.end()) used.push_back(stream);
  StreamId(stream);
}

void Allocator::ProcessPendingFrees() {
  if (pending_.empty()) return;
  for (size_t i = 0; i < pending_.size();) {
    PendingFree& p = pending_[i];
    bool done = true;
    for (uint64_t e : p.events) done = done && events_->Query(e);
    if (!done) {
      i++;
      continue;
    }
    for (uint64_t e : p.events) events_->Release(e);
    imports_->SetCurrentStream(p.stream);
    trace_.Add(TraceAction::kFreeCompleted, p.modelAddr, p.requested, p.stream);
    policy_->FreeComplete(p.handle);
    pending_.erase(pending_.begin() + static_cast<long>(i));
  }
  ResolveTrace();
}

void Allocator::CompletePendingFreesWaiting() {
  for (auto& p : pending_) {
    for (uint64_t e : p.events) {
      events_->Wait(e);
      events_->Release(e);
    }
    imports_->SetCurrentStream(p.stream);
    trace_.Add(TraceAction::kFreeCompleted, p.modelAddr, p.requested, p.stream);
    policy_->FreeComplete(p.handle);
  }
  pending_.clear();
}

void Allocator::NoteFreed(uint64_t ptr, uint64_t bytes, int streamId) {
  const uint64_t seq = ++freeCount_[static_cast<size_t>(streamId)];
  // a later free at the same address on the same stream stands for the earlier one too (a fence
  // covering it covers every earlier free of that stream), so the entry keeps the longer range
  Freed* f = freedIndex_.Find(ptr, streamId);
  if (!f) {
    freed_.insert(FreedKey{ptr, streamId});
    f = freedIndex_.Insert(ptr, streamId, Freed{0, 0});
  }
  *f = Freed{std::max(f->end, ptr + bytes), seq};
  maxFreedBytes_ = std::max(maxFreedBytes_, bytes);
  if (freed_.size() > pruneAt_) PruneFreed();
}

void Allocator::MaybeMark(int streamId) {
  const size_t id = static_cast<size_t>(streamId);
  if (freeCount_[id] % kMarkEvery != 0) return;
  PollMarkers(id);
  if (markers_[id].size() >= kMaxMarkers) return;  // the stream is far behind: fences will wait anyway
  markers_[id].push_back(Marker{events_->Record(streams_[id]), freeCount_[id]});
}

void Allocator::PollMarkers(size_t id) {
  auto& q = markers_[id];
  // one stream's events complete in the order they were recorded: stop at the first still running
  while (!q.empty() && events_->Query(q.front().event)) {
    fencedCount_[id] = std::max(fencedCount_[id], q.front().seq);
    events_->Release(q.front().event);
    q.pop_front();
  }
}

std::set<Allocator::FreedKey>::iterator Allocator::EraseFreed(std::set<FreedKey>::iterator it) {
  freedIndex_.Erase(it->first, it->second);
  return freed_.erase(it);
}

void Allocator::PruneFreed() {
  for (auto it = freed_.begin(); it != freed_.end();)
    it = FreedAt(*it).seq <= fencedCount_[static_cast<size_t>(it->second)] ? EraseFreed(it) : std::next(it);
  pruneAt_ = std::max<size_t>(4096, freed_.size() * 2);
}

void Allocator::FenceRange(uint64_t va, uint64_t bytes) {
  const uint64_t end = va + bytes;
  std::vector<uint64_t> needed(streams_.size(), 0);  // by stream id: the latest free to wait for
  auto it = freed_.lower_bound({va > maxFreedBytes_ ? va - maxFreedBytes_ : 0, -1});
  while (it != freed_.end() && it->first < end) {
    const size_t id = static_cast<size_t>(it->second);
    const Freed& f = FreedAt(*it);
    if (f.seq <= fencedCount_[id]) {
      it = EraseFreed(it);  // finished already (INV-TA-4)
      continue;
    }
    if (f.end > va) needed[id] = std::max(needed[id], f.seq);
    ++it;
  }
  for (size_t id = 0; id < needed.size(); id++) {
    if (needed[id] == 0) continue;
    // the markers that completed already cover their frees: no wait at all for memory freed before
    PollMarkers(id);
    if (needed[id] <= fencedCount_[id]) continue;
    const int64_t t0 = SteadyNs();
    auto& q = markers_[id];
    auto covering = std::find_if(q.begin(), q.end(), [&](const Marker& m) { return m.seq >= needed[id]; });
    if (covering != q.end()) {
      // wait only until the stream passes the first marker after those frees, not its whole queue
      events_->Wait(covering->event);
      fencedCount_[id] = covering->seq;
      for (auto it = q.begin(); it != std::next(covering); ++it) events_->Release(it->event);
      q.erase(q.begin(), std::next(covering));
    } else {
      const uint64_t covered = freeCount_[id];  // the event follows every free this stream made so far
      const uint64_t e = events_->Record(streams_[id]);
      events_->Wait(e);
      events_->Release(e);
      fencedCount_[id] = covered;
      for (const Marker& m : q) events_->Release(m.event);  // all before it (INV-TA-5)
      q.clear();
    }
    fenceWaits_++;
    fenceNs_ += static_cast<uint64_t>(SteadyNs() - t0);
  }
}

void Allocator::EmptyCache() {
  std::lock_guard<std::mutex> lock(mu_);
  if (policy_->broken()) return;
  StartCall(SteadyNs());
  // the snapshot says this was an empty_cache, so that its unmaps are not taken for a malloc's own
  trace_.MarkEmptyCache();
  // PyTorch's empty_cache: synchronize_and_free_events (the pending frees' events only), then
  // release every cached segment.
  CompletePendingFreesWaiting();
  policy_->EmptyCache();
  ResolveTrace();
}

void Allocator::SetMemoryFraction(double fraction) {
  std::lock_guard<std::mutex> lock(mu_);
  if (policy_->broken()) return;
  StartCall(SteadyNs());
  policy_->SetCapacity(static_cast<uint64_t>(fraction * static_cast<double>(totalBytes_)));
  ResolveTrace();
}

std::string Allocator::OutOfMemoryMessage(uint64_t bytes) {
  uint64_t freeBytes = 0, totalBytes = 0;
  driver_->MemGetInfo(&freeBytes, &totalBytes);
  const uint64_t allocated = static_cast<uint64_t>(policy_->Stat(kStatAllocatedAll));
  const uint64_t reserved = static_cast<uint64_t>(policy_->Stat(kStatReservedAll));
  const uint64_t inUse = totalBytes - freeBytes;
  return "CUDA out of memory. Tried to allocate " + FormatSize(bytes) + ". GPU " + std::to_string(device_) + " has a total capacity of " +
         FormatSize(totalBytes) + " of which " + FormatSize(freeBytes) +
         " is free. Including non-PyTorch memory, this process has " + FormatSize(inUse) +
         " memory in use. Of the allocated memory " + FormatSize(allocated) +
         " is allocated by PyTorch, and " + FormatSize(reserved > allocated ? reserved - allocated : 0) +
         " is reserved by PyTorch but unallocated. (lakebed allocator: the policy found no memory for the request)";
}

std::vector<double> Allocator::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<double> v(static_cast<size_t>(policy_->StatCount()));
  for (size_t i = 0; i < v.size(); i++) v[i] = policy_->Stat(static_cast<int>(i));
  return v;
}

uint64_t Allocator::PendingFrees() {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

uint64_t Allocator::TraceCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return trace_.size();
}

std::vector<TraceEntry> Allocator::TraceRead(uint64_t start, uint64_t count) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TraceEntry> out;
  for (uint64_t i = start; i < trace_.size() && out.size() < count; i++) out.push_back(trace_.at(i));
  return out;
}

uint64_t Allocator::TraceDropped() {
  std::lock_guard<std::mutex> lock(mu_);
  return trace_.dropped();
}

std::vector<uint64_t> Allocator::EmptyCacheMarks() {
  std::lock_guard<std::mutex> lock(mu_);
  return trace_.EmptyCacheMarks();
}

CallLog Allocator::CallsCopy() {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

std::vector<uint32_t> Allocator::Latencies(bool frees) {
  std::lock_guard<std::mutex> lock(mu_);
  return frees ? freeNs_ : mallocNs_;
}

void Allocator::TakeSnapshot(Snapshot* out) {
  size_t room = 0;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const size_t n = trace_.size();
      if (n <= room) {
        trace_.CopyKept(out->trace.data());
        out->trace.resize(n);  // shrinks: no writes
        out->traceDropped = trace_.dropped();
        out->emptyCacheMarks = trace_.EmptyCacheMarks();
        out->segments = SegmentsLocked();
        return;
      }
      // room for the entries appended while it is made, up to the cap's
      room = std::max<size_t>(n, std::min<uint64_t>(n + n / 8 + TraceLog::kBlockEntries, trace_.maxEntries()));
    }
    out->trace.resize(room);  // zero-filled: its pages are touched here, outside the lock
  }
}

std::vector<SnapshotSegment> Allocator::SegmentsLocked() {
  // In the policy's address space, as the trace (trace_log.h says why): cudaMalloc'd segments as
  // they are, mapped ranges joined where adjacent and of one stream (one expandable segment each,
  // as the importer's empty-start proof joins them). Each with the stream it was taken on, which
  // the trace's segment events name: a snapshot whose trace the cap cut is rebuilt backwards from
  // these segments, and undoing a segment_unmap joins the range to its neighbour only where their
  // streams agree, as PyTorch's expandable segments are one per stream.
  std::vector<SnapshotSegment> mallocs, mappings;
  policy_->Run([&] {
    for (const auto& [addr, r] : imports_->mallocs())
      mallocs.push_back({static_cast<uint64_t>(policy_->ModelAddressNested(static_cast<double>(addr))), r.bytes, r.stream, false, {}});
    for (const auto& [addr, r] : imports_->mappings())
      mappings.push_back({static_cast<uint64_t>(policy_->ModelAddressNested(static_cast<double>(addr))), r.bytes, r.stream, true, {}});
  });
  auto byAddress = [](const SnapshotSegment& a, const SnapshotSegment& b) { return a.addr < b.addr; };
  std::sort(mappings.begin(), mappings.end(), byAddress);
  std::vector<SnapshotSegment> segments = std::move(mallocs);
  for (const SnapshotSegment& m : mappings) {
    const SnapshotSegment* last = segments.empty() ? nullptr : &segments.back();
    if (last && last->expandable && last->stream == m.stream && last->addr + last->size == m.addr)
      segments.back().size += m.size;
    else
      segments.push_back(m);
  }
  std::sort(segments.begin(), segments.end(), byAddress);
  std::vector<SnapshotBlock> blocks;
  for (const auto& [ptr, b] : live_) blocks.push_back({b.modelAddr, policy_->BlockSize(b.handle), b.requested, 0});
  for (const auto& p : pending_) blocks.push_back({p.modelAddr, policy_->BlockSize(p.handle), p.requested, 1});
  std::vector<size_t> order(blocks.size());
  for (size_t i = 0; i < order.size(); i++) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return blocks[a].addr < blocks[b].addr; });
  size_t s = 0;
  for (size_t k : order) {
    const SnapshotBlock& b = blocks[k];
    while (s < segments.size() && segments[s].addr + segments[s].size <= b.addr) s++;
    if (s == segments.size() || b.addr < segments[s].addr) continue;  // outside every segment: cannot happen (INV-TA-1)
    SnapshotSegment& seg = segments[s];
    const uint64_t end = seg.blocks.empty() ? seg.addr : seg.blocks.back().addr + seg.blocks.back().size;
    if (b.addr > end) seg.blocks.push_back({end, b.addr - end, 0, 2});
    seg.blocks.push_back(b);
  }
  for (auto& seg : segments) {
    const uint64_t end = seg.blocks.empty() ? seg.addr : seg.blocks.back().addr + seg.blocks.back().size;
    if (end < seg.addr + seg.size) seg.blocks.push_back({end, seg.addr + seg.size - end, 0, 2});
  }
  return segments;
}

std::string Allocator::Check() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [ptr, b] : live_)
    if (policy_->BlockDriverAddress(b.handle) != ptr) return "INV-TA-1: live pointer " + std::to_string(ptr) + " is not its block's address";
  for (const auto& p : pending_) {
    if (policy_->BlockDriverAddress(p.handle) != p.ptr) return "INV-TA-2: pending pointer " + std::to_string(p.ptr) + " is not its block's address";
    if (live_.count(p.ptr)) return "INV-TA-3: pointer " + std::to_string(p.ptr) + " is both live and pending";
  }
  if (policy_->broken()) return policy_->trapMessage();
  return "";
}

void Allocator::Memory(uint64_t out[8]) {
  std::lock_guard<std::mutex> lock(mu_);
  out[0] = baselineFreeBytes_;
  out[1] = std::min(imports_->minFreeBytes(), baselineFreeBytes_);
  out[2] = imports_->physicalBytes();
  out[3] = imports_->peakPhysicalBytes();
  out[4] = fenceWaits_;
  out[5] = fenceNs_;
  out[6] = imports_->driverCalls();
  out[7] = imports_->driverNs();
}

std::string Allocator::brokenReason() {
  std::lock_guard<std::mutex> lock(mu_);
  return policy_->broken() ? policy_->trapMessage() : "";
}

}  // namespace lakebed::torch
