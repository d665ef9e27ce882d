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
// all of it, megabytes, inside one free). Each block is fresh anonymous memory mapped with its pages
// populated (MAP_POPULATE): the kernel hands them over zeroed, all in the one mmap call, rather
// than one page fault every hundred appends, or a zeroing pass over them in the library that took
// the same faults one page at a time (which, on the host driver, was the largest single cost of a
// free while the trace grew). An append writes its ring slot from a running index, not a division.
//
// A cap, as PyTorch's _record_memory_history(max_entries=N): the trace keeps the newest maxEntries
// entries (a ring, PyTorch's RingBuffer), so a long job's trace stops growing at maxEntries x 40
// bytes. A ring and not a stop: a snapshot is dumped at the end, or at an out-of-memory, and what a
// user looks at then is the latest steps; the importer rebuilds the state before a trace that
// starts mid-run from the snapshot's segments (packages/traces' initial-state.ts), as it does for a
// PyTorch snapshot whose ring wrapped. Indices (at, size) count the kept entries, oldest first;
// absolute numbers (every entry ever appended, dropped ones included) name an entry across drops.
//
// empty_cache marks: the absolute trace position at which each torch.cuda.empty_cache() began
// (the entries after it are its own). PyTorch's trace does not record the call, and core-sim's
// replay infers it from a burst of segment_free/unmap (a release the next malloc would not make
// itself); a policy's own unmaps inside a malloc (lakebed moving a chunk) look the same, so the
// snapshot names the calls instead (python/lakebed_torch writes them into allocator_settings).
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <type_traits>
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
  // The default cap: 2^21 entries (80 MiB), about 720 steps of scripts/torch's GPT-2 training and 380
  // of its Llama LoRA (about 2,900 and 5,500 entries a step: an allocation, its free requested and
  // completed).
  static constexpr uint64_t kDefaultMaxEntries = uint64_t{1} << 21;

  // At most maxEntries entries are kept (0: none are recorded), before the first Add.
  void SetMaxEntries(uint64_t maxEntries) {
    maxEntries_ = maxEntries;
    ringEntries_ = (maxEntries + kBlockEntries - 1) / kBlockEntries * kBlockEntries;
  }
  uint64_t maxEntries() const { return maxEntries_; }

  // The time of the call being served; entries appended from here on carry it.
  void SetTime(int64_t timeUs) { timeUs_ = timeUs; }
  void Add(TraceAction action, uint64_t addr, uint64_t size, uint64_t stream) {
    if (recording()) Append() = TraceEntry{action, addr, size, stream, timeUs_};
  }
  // A segment_map or segment_unmap right after one of the same action and stream that ends where
  // this one starts extends it; else a new entry.
  void AddRange(TraceAction action, uint64_t addr, uint64_t size, uint64_t stream) {
    if (!recording()) return;
    // never across an empty_cache mark: its entries start a burst of their own
    if (size_ > 0 && total_ != markBarrier_) {
      TraceEntry& last = at(size_ - 1);
      if (last.action == action && last.stream == stream && last.addr + last.size == addr) {
        last.size += size;
        return;
      }
    }
    Add(action, addr, size, stream);
  }
  // kept entries
  size_t size() const { return size_; }
  // entries ever appended (the next entry's absolute number), and those dropped by the cap
  uint64_t total() const { return total_; }
  uint64_t dropped() const { return total_ - size_; }
  TraceEntry& at(size_t i) { return Slot(total_ - size_ + i); }
  const TraceEntry& at(size_t i) const { return const_cast<TraceLog*>(this)->Slot(total_ - size_ + i); }
  // Copies the kept entries, oldest first, into out (room for size() entries): a block's run of
  // slots at a time, for a snapshot's copy taken under the allocator's lock.
  void CopyKept(TraceEntry* out) const {
    for (uint64_t n = total_ - size_; n < total_;) {
      const uint64_t i = n % ringEntries_;
      const uint64_t run = std::min<uint64_t>(total_ - n, kBlockEntries - i % kBlockEntries);
      std::memcpy(out, &blocks_[i / kBlockEntries][i % kBlockEntries], run * sizeof(TraceEntry));
      out += run;
      n += run;
    }
  }
  // The entry of absolute number n; nullptr once the cap dropped it.
  TraceEntry* atAbsolute(uint64_t n) { return n >= total_ - size_ && n < total_ ? &Slot(n) : nullptr; }
  void SetOn(bool on) { on_ = on; }
  bool recording() const { return on_ && maxEntries_ > 0; }

  // torch.cuda.empty_cache() begins: its entries come next.
  void MarkEmptyCache() {
    if (!recording()) return;
    if (!marks_.empty() && marks_.back() == total_) return;  // nothing happened since the last one
    // marks the cap dropped go with their entries (a job calling empty_cache every step keeps
    // about as many marks as steps in the kept trace)
    while (!marks_.empty() && marks_.front() < total_ - size_) marks_.pop_front();
    marks_.push_back(total_);
    markBarrier_ = total_;
  }
  // The marks within the kept entries, as indices of kept entries (a mark equal to size(): the
  // call released nothing after the last entry).
  std::vector<uint64_t> EmptyCacheMarks() const {
    std::vector<uint64_t> out;
    for (uint64_t m : marks_)
      if (m >= total_ - size_) out.push_back(m - (total_ - size_));
    return out;
  }

 private:
  // Absolute number n's slot: the ring holds ringEntries_ slots (maxEntries_ rounded up to whole
  // blocks, made as the trace first reaches them), so the newest maxEntries_ numbers never share one.
  TraceEntry& Slot(uint64_t n) {
    const uint64_t i = n % ringEntries_;
    return blocks_[i / kBlockEntries][i % kBlockEntries];
  }
  TraceEntry& Append() {
    if (total_ < ringEntries_ && total_ == blocks_.size() * kBlockEntries) AddBlock();
    // the slot of absolute number total_ (Slot(total_)), kept as the appends advance
    TraceEntry& e = blocks_[nextSlot_ / kBlockEntries][nextSlot_ % kBlockEntries];
    if (++nextSlot_ == ringEntries_) nextSlot_ = 0;
    total_++;
    if (size_ < maxEntries_) size_++;  // else the oldest kept entry leaves the window (its slot comes round later)
    return e;
  }
  static constexpr size_t kBlockBytes = kBlockEntries * sizeof(TraceEntry);
  struct BlockUnmap {
    void operator()(TraceEntry* p) const { munmap(p, kBlockBytes); }
  };
  using Block = std::unique_ptr<TraceEntry[], BlockUnmap>;
  static_assert(std::is_trivial_v<TraceEntry>, "a block's entries are its mapped zero bytes");
  // One more block of kBlockEntries zeroed entries (TraceEntry is a plain struct: zero bytes are its
  // value-initialized state). Out of line, so that Add stays small enough to be inlined.
  [[gnu::noinline]] void AddBlock() {
    void* p = mmap(nullptr, kBlockBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    // one write per page now, not at the appends: under a hypervisor that maps guest pages on
    // their first write (shadow or nested paging), that first write is an exit of microseconds,
    // and one every hundred appends put one free or malloc in fifty there
    for (size_t offset = 0; offset < kBlockBytes; offset += 4096) static_cast<volatile char*>(p)[offset] = 0;
    Block block(static_cast<TraceEntry*>(p));
    blocks_.push_back(std::move(block));
  }

  bool on_ = true;
  int64_t timeUs_ = 0;
  uint64_t maxEntries_ = kDefaultMaxEntries;
  uint64_t ringEntries_ = kDefaultMaxEntries;
  size_t size_ = 0;
  uint64_t total_ = 0;
  uint64_t nextSlot_ = 0;  // total_ % ringEntries_
  uint64_t markBarrier_ = UINT64_MAX;
  std::deque<uint64_t> marks_;  // ascending absolute numbers; the oldest leave from the front
  std::vector<Block> blocks_;
};

}  // namespace lakebed::torch
