// DriverCore: validation, bookkeeping and teardown around one Backend (see driver_core.h for the
// order of steps every call follows).
#include "driver_core.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "pattern.h"

namespace lakebed {

namespace {

// Addresses and sizes cross into JavaScript as doubles; 2^53 keeps every value exact there.
constexpr uint64_t kMaxExact = 1ull << 53;

std::string Hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Bytes(uint64_t v) { return std::to_string(v) + " bytes"; }


}  // namespace

DriverCore::DriverCore(std::unique_ptr<Backend> backend, uint64_t capacityBytes)
    : backend_(std::move(backend)),
      granularity_(backend_->granularityBytes()),
      capacity_(capacityBytes),
      oomName_(std::string(backend_->kind()) == "cuda" ? "CUDA_ERROR_OUT_OF_MEMORY" : "ENOMEM") {}

DriverCore::~DriverCore() { Teardown(); }

Status DriverCore::Finish(CallKind kind, int64_t t0, Status status) {
  const size_t i = static_cast<size_t>(kind);
  counters_.calls[i]++;
  if (!status.ok()) {
    counters_.failures[i]++;
    if (status.code == Status::Code::kOutOfMemory) counters_.ooms[i]++;
  }
  if (timing_) times_.push_back(CallTime{kind, MonotonicNs() - t0, backend_->driverNs()});
  return status;
}

void DriverCore::SetTiming(bool on) {
  timing_ = on;
  backend_->SetTiming(on);
  times_.clear();
  if (on) {
    clockReadNs_ = ClockReadNs();
    times_.reserve(1 << 17);  // a long replay's calls without a reallocation inside one of them
  }
}

std::vector<CallTime> DriverCore::TakeTimes() {
  std::vector<CallTime> out;
  out.swap(times_);
  if (timing_) times_.reserve(1 << 17);
  return out;
}

Status DriverCore::Closed() const {
  return Status::Make(Status::Code::kClosed, "", "the driver was torn down");
}

// A non-empty range below 2^53 that does not wrap; `granular` also asks for va and bytes to be
// multiples of the granularity (cuMemMap/cuMemAddressReserve/cuMemSetAccess require it).
Status DriverCore::CheckRange(uint64_t va, uint64_t bytes, bool granular) const {
  if (bytes == 0) return Status::Invalid("bytes must be positive");
  if (va >= kMaxExact || bytes >= kMaxExact || va + bytes > kMaxExact)
    return Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) + " is beyond 2^53");
  if (granular && (va % granularity_ != 0 || bytes % granularity_ != 0))
    return Status::Invalid("va " + Hex(va) + " and " + Bytes(bytes) + " must be multiples of " +
                           Bytes(granularity_));
  return Status::Ok();
}

Status DriverCore::CheckAccessible(uint64_t va, uint64_t bytes, bool write) const {
  Status s = CheckRange(va, bytes, false);
  if (!s.ok()) return s;
  std::string why;
  if (!tables_.Accessible(va, bytes, &why, write))
    return Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) + ": " + why);
  return Status::Ok();
}

Status DriverCore::CheckTiled(uint64_t va, uint64_t bytes) {
  Status s = CheckRange(va, bytes, true);
  if (!s.ok()) return s;
  std::string why;
  if (!tables_.TiledByMappings(va, bytes, &tiles_, &why))
    return Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) + ": " + why);
  return Status::Ok();
}

Status DriverCore::CheckCapacity(uint64_t bytes) const {
  if (capacity_ != 0 && tables_.totals.physicalBytes + bytes > capacity_)
    return Status::Make(Status::Code::kOutOfMemory, oomName_,
                        "capacity of " + Bytes(capacity_) + " reached");
  return Status::Ok();
}

// ---- physical memory ---------------------------------------------------------------------------

Status DriverCore::MemCreate(uint64_t bytes, uint32_t* handle) {
  const CallKind k = CallKind::kMemCreate;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckRange(0, bytes, true); });
  if (s.ok()) s = CheckCapacity(bytes);
  uint64_t native = 0;
  if (s.ok()) s = backend_->memCreate(bytes, &native);
  if (s.ok()) *handle = tables_.AddHandle(native, bytes);
  return Finish(k, t0, s);
}

Status DriverCore::MemRelease(uint32_t handle) {
  const CallKind k = CallKind::kMemRelease;
  const int64_t t0 = Begin();
  auto it = tables_.handles.find(handle);
  Status s = Admit(k, [&] {
    if (it == tables_.handles.end() || it->second.released)
      return Status::Invalid("handle " + std::to_string(handle) + " is not live");
    return Status::Ok();
  });
  if (s.ok()) s = backend_->memRelease(it->second.native);
  if (s.ok()) tables_.ReleaseHandle(it);
  return Finish(k, t0, s);
}

// ---- virtual address ranges --------------------------------------------------------------------

Status DriverCore::AddressReserve(uint64_t bytes, uint64_t alignmentBytes, uint64_t* va) {
  const CallKind k = CallKind::kAddressReserve;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] {
    if (alignmentBytes != 0 && (alignmentBytes & (alignmentBytes - 1)) != 0)
      return Status::Invalid("alignment must be 0 or a power of two");
    return CheckRange(0, bytes, true);
  });
  uint64_t base = 0;
  if (s.ok()) s = backend_->addressReserve(bytes, alignmentBytes, &base);
  if (s.ok() && base + bytes > kMaxExact) {
    // Cannot happen with 48-bit (x86-64) or 49-bit (UVA) addresses; if it ever does, give the
    // range back rather than hand JavaScript an address it would round.
    backend_->addressFree(base, bytes);
    s = Status::Make(Status::Code::kDriver, "", "reserved range is beyond 2^53");
  }
  if (s.ok()) {
    tables_.AddReservation(base, bytes, alignmentBytes);
    *va = base;
  }
  return Finish(k, t0, s);
}

Status DriverCore::AddressFree(uint64_t va, uint64_t bytes) {
  const CallKind k = CallKind::kAddressFree;
  const int64_t t0 = Begin();
  auto it = tables_.reservations.find(va);
  Status s = Admit(k, [&] {
    if (it == tables_.reservations.end())
      return Status::Invalid("no reservation starts at " + Hex(va));
    if (it->second.bytes != bytes)
      return Status::Invalid("the reservation at " + Hex(va) + " has " + Bytes(it->second.bytes) +
                             ", not " + Bytes(bytes));
    if (it->second.mappings != 0)
      return Status::Invalid("the reservation at " + Hex(va) + " still holds " +
                             std::to_string(it->second.mappings) + " mapping(s)");
    return Status::Ok();
  });
  if (s.ok()) s = backend_->addressFree(va, bytes);
  if (s.ok()) tables_.RemoveReservation(it);
  return Finish(k, t0, s);
}

// ---- mapping -----------------------------------------------------------------------------------

Status DriverCore::Map(uint64_t va, uint64_t bytes, uint32_t handle, uint64_t offsetBytes) {
  const CallKind k = CallKind::kMap;
  const int64_t t0 = Begin();
  auto h = tables_.handles.find(handle);
  LiveTables::ReservationIt r;
  LiveTables::MappingIt next;
  Status s = Admit(k, [&] {
    Status range = CheckRange(va, bytes, true);
    if (!range.ok()) return range;
    // cuMemMap documents "offset: currently must be zero", and an H100 on driver 580 answers
    // CUDA_ERROR_NOT_SUPPORTED to any other offset, and to a map of part of a handle
    // (bench/results-h100.md). The host driver could do both, and refuses them alike: a policy
    // that runs on host memory must also run on the GPU.
    if (offsetBytes != 0) return Status::Invalid("offset must be 0 (cuMemMap maps a handle from its start)");
    if (h == tables_.handles.end() || h->second.released)
      return Status::Invalid("handle " + std::to_string(handle) + " is not live");
    if (bytes != h->second.bytes)
      return Status::Invalid("a map covers its whole handle: handle " + std::to_string(handle) +
                             " has " + Bytes(h->second.bytes) + ", not " + Bytes(bytes));
    r = tables_.ReservationHolding(va, bytes);
    if (r == tables_.reservations.end())
      return Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) +
                             " is not inside one reservation");
    if (tables_.OverlapsMapping(va, bytes, &next))
      return Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) +
                             " overlaps an existing mapping");
    return Status::Ok();
  });
  if (s.ok()) s = backend_->map(va, bytes, h->second.native, offsetBytes);
  if (s.ok()) tables_.AddMapping(next, va, bytes, h, offsetBytes, r);
  return Finish(k, t0, s);
}

Status DriverCore::SetAccess(uint64_t va, uint64_t bytes) {
  const CallKind k = CallKind::kSetAccess;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckTiled(va, bytes); });
  if (s.ok()) s = backend_->setAccess(va, bytes);
  if (s.ok())
    for (LiveTables::MappingIt m : tiles_) {
      m->second.access = true;
      m->second.readOnly = false;
    }
  return Finish(k, t0, s);
}

// ---- sharing between processes -----------------------------------------------------------------

Status DriverCore::MemCreateShareable(uint64_t bytes, uint32_t* handle) {
  const CallKind k = CallKind::kMemCreate;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckRange(0, bytes, true); });
  if (s.ok()) s = CheckCapacity(bytes);
  uint64_t native = 0;
  if (s.ok()) s = backend_->memCreateShareable(bytes, &native);
  if (s.ok()) {
    *handle = tables_.AddHandle(native, bytes);
    tables_.handles[*handle].shareable = true;
  }
  return Finish(k, t0, s);
}

Status DriverCore::ExportHandle(uint32_t handle, int* fd, int64_t* driverNs) {
  if (closed_) return Closed();
  auto it = tables_.handles.find(handle);
  if (it == tables_.handles.end() || it->second.released)
    return Status::Invalid("handle " + std::to_string(handle) + " is not live");
  if (!it->second.shareable)
    return Status::Invalid("handle " + std::to_string(handle) +
                           " was not made shareable (memCreateShareable): CUDA fixes a chunk's "
                           "handle type when it is created");
  const int64_t t0 = MonotonicNs();
  Status s = backend_->exportHandle(it->second.native, fd);
  *driverNs = MonotonicNs() - t0;
  return s;
}

Status DriverCore::ImportHandle(int fd, uint64_t bytes, uint32_t* handle, int64_t* driverNs) {
  if (closed_) return Closed();
  if (fd < 0) return Status::Invalid("fd " + std::to_string(fd) + " is no descriptor");
  Status s = CheckRange(0, bytes, true);
  if (!s.ok()) return s;
  uint64_t native = 0;
  const int64_t t0 = MonotonicNs();
  s = backend_->importHandle(fd, bytes, &native);
  *driverNs = MonotonicNs() - t0;
  if (s.ok()) {
    *handle = tables_.AddHandle(native, bytes);
    tables_.handles[*handle].shareable = true;
  }
  return s;
}

Status DriverCore::SetAccessReadOnly(uint64_t va, uint64_t bytes) {
  const CallKind k = CallKind::kSetAccess;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckTiled(va, bytes); });
  if (s.ok()) s = backend_->setAccessReadOnly(va, bytes);
  if (s.ok())
    for (LiveTables::MappingIt m : tiles_) {
      m->second.access = true;
      m->second.readOnly = true;
    }
  return Finish(k, t0, s);
}

Status DriverCore::WriteThroughReadOnly(uint64_t va, uint64_t bytes) {
  if (closed_) return Closed();
  Status s = CheckTiled(va, bytes);
  if (!s.ok()) return s;
  for (LiveTables::MappingIt m : tiles_)
    if (!m->second.readOnly)
      return Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) +
                             " is not all mapped read-only: this probe writes only where the "
                             "memory system must refuse");
  return backend_->memset(va, 0xA5, bytes);
}

Status DriverCore::Unmap(uint64_t va, uint64_t bytes) {
  const CallKind k = CallKind::kUnmap;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckTiled(va, bytes); });
  if (s.ok()) s = backend_->unmap(va, bytes);
  if (s.ok())
    for (LiveTables::MappingIt m : tiles_) tables_.RemoveMapping(m);
  return Finish(k, t0, s);
}

// ---- plain allocations -------------------------------------------------------------------------

Status DriverCore::Malloc(uint64_t bytes, uint64_t* va) {
  const CallKind k = CallKind::kMalloc;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckRange(0, bytes, false); });
  if (s.ok()) s = CheckCapacity(bytes);
  uint64_t base = 0;
  if (s.ok()) s = backend_->malloc(bytes, &base);
  if (s.ok() && base + bytes > kMaxExact) {
    backend_->free(base, bytes);
    s = Status::Make(Status::Code::kDriver, "", "allocation is beyond 2^53");
  }
  if (s.ok()) {
    tables_.AddMalloc(base, bytes);
    *va = base;
  }
  return Finish(k, t0, s);
}

Status DriverCore::Free(uint64_t va) {
  const CallKind k = CallKind::kFree;
  const int64_t t0 = Begin();
  auto it = tables_.mallocs.find(va);
  Status s = Admit(k, [&] {
    return it == tables_.mallocs.end() ? Status::Invalid("no malloc starts at " + Hex(va))
                                       : Status::Ok();
  });
  if (s.ok()) s = backend_->free(va, it->second.bytes);
  if (s.ok()) tables_.RemoveMalloc(it);
  return Finish(k, t0, s);
}

// ---- data movement -----------------------------------------------------------------------------

Status DriverCore::CopyToHost(uint64_t va, void* dst, uint64_t bytes) {
  const CallKind k = CallKind::kCopyToHost;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckAccessible(va, bytes); });
  if (s.ok()) s = backend_->copyToHost(dst, va, bytes);
  return Finish(k, t0, s);
}

Status DriverCore::CopyFromHost(uint64_t va, const void* src, uint64_t bytes) {
  const CallKind k = CallKind::kCopyFromHost;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckAccessible(va, bytes, true); });
  if (s.ok()) s = backend_->copyFromHost(va, src, bytes);
  return Finish(k, t0, s);
}

Status DriverCore::Memset(uint64_t va, uint8_t value, uint64_t bytes) {
  const CallKind k = CallKind::kMemset;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckAccessible(va, bytes, true); });
  if (s.ok()) s = backend_->memset(va, value, bytes);
  return Finish(k, t0, s);
}

Status DriverCore::MemGetInfo(uint64_t* freeBytes, uint64_t* totalBytes) {
  const CallKind k = CallKind::kMemGetInfo;
  const int64_t t0 = Begin();
  Status s = Admit(k, [] { return Status::Ok(); });
  if (s.ok()) s = backend_->memGetInfo(freeBytes, totalBytes);
  if (s.ok() && capacity_ != 0) {
    // The capacity is what a policy may use: report it as the device, never more than is free.
    const uint64_t used = tables_.totals.physicalBytes;
    *totalBytes = std::min(*totalBytes, capacity_);
    *freeBytes = std::min(*freeBytes, used >= capacity_ ? 0 : capacity_ - used);
  }
  return Finish(k, t0, s);
}

Status DriverCore::FillPattern(uint64_t va, uint64_t bytes, uint64_t seed) {
  const CallKind k = CallKind::kFillPattern;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckAccessible(va, bytes, true); });
  if (s.ok()) {
    ForEachProbe(bytes, granularity_, [&](uint64_t offset, uint64_t len) {
      probe_.resize(len);
      for (uint64_t i = 0; i < len; i++) probe_[i] = PatternByte(seed, offset + i);
      s = backend_->copyFromHost(va + offset, probe_.data(), len);
      return s.ok();
    });
  }
  return Finish(k, t0, s);
}

Status DriverCore::CheckPattern(uint64_t va, uint64_t bytes, uint64_t seed,
                                uint64_t* mismatchedBytes) {
  const CallKind k = CallKind::kCheckPattern;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckAccessible(va, bytes); });
  uint64_t bad = 0;
  if (s.ok()) {
    ForEachProbe(bytes, granularity_, [&](uint64_t offset, uint64_t len) {
      probe_.resize(len);
      s = backend_->copyToHost(probe_.data(), va + offset, len);
      if (!s.ok()) return false;
      for (uint64_t i = 0; i < len; i++) bad += probe_[i] != PatternByte(seed, offset + i);
      return true;
    });
  }
  if (s.ok()) *mismatchedBytes = bad;
  return Finish(k, t0, s);
}

// ---- the host tier -----------------------------------------------------------------------------

Status DriverCore::CheckCopy(uint64_t va, uint64_t hostOffset, uint64_t bytes, bool write) const {
  if (arena_ == nullptr) return Status::Invalid("no host arena is reserved (hostReserve first)");
  if (bytes == 0) return Status::Invalid("bytes must be positive");
  if (hostOffset > arenaBytes_ || bytes > arenaBytes_ - hostOffset)
    return Status::Invalid("host range " + std::to_string(hostOffset) + " + " + Bytes(bytes) +
                           " runs past the host arena of " + Bytes(arenaBytes_));
  return CheckAccessible(va, bytes, write);
}

Status DriverCore::HostReserve(uint64_t bytes) {
  const CallKind k = CallKind::kHostReserve;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] {
    if (arena_ != nullptr)
      return Status::Invalid("this driver already holds a host arena of " + Bytes(arenaBytes_) +
                             " (one at a time)");
    return CheckRange(0, bytes, false);
  });
  void* arena = nullptr;
  if (s.ok()) s = backend_->hostReserve(bytes, &arena);
  if (s.ok()) {
    arena_ = static_cast<uint8_t*>(arena);
    arenaBytes_ = bytes;
  }
  return Finish(k, t0, s);
}

Status DriverCore::CopyOut(uint64_t va, uint64_t hostOffset, uint64_t bytes) {
  const CallKind k = CallKind::kCopyOut;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckCopy(va, hostOffset, bytes, false); });
  if (s.ok()) s = backend_->copyToHost(arena_ + hostOffset, va, bytes);
  return Finish(k, t0, s);
}

Status DriverCore::CopyIn(uint64_t hostOffset, uint64_t va, uint64_t bytes) {
  const CallKind k = CallKind::kCopyIn;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] { return CheckCopy(va, hostOffset, bytes, true); });
  if (s.ok()) s = backend_->copyFromHost(va, arena_ + hostOffset, bytes);
  return Finish(k, t0, s);
}

Status DriverCore::HostRelease() {
  const CallKind k = CallKind::kHostRelease;
  const int64_t t0 = Begin();
  Status s = Admit(k, [&] {
    return arena_ == nullptr ? Status::Invalid("no host arena is reserved") : Status::Ok();
  });
  if (s.ok()) s = backend_->hostRelease(arena_, arenaBytes_);
  if (s.ok()) {
    arena_ = nullptr;
    arenaBytes_ = 0;
  }
  return Finish(k, t0, s);
}

// ---- teardown ----------------------------------------------------------------------------------

namespace {

// Keys of a table ordered newest first (by creation sequence).
template <class Map>
std::vector<typename Map::key_type> NewestFirst(const Map& table) {
  std::vector<std::pair<uint64_t, typename Map::key_type>> order;
  for (const auto& [key, record] : table) order.emplace_back(record.seq, key);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<typename Map::key_type> keys;
  for (const auto& entry : order) keys.push_back(entry.second);
  return keys;
}

}  // namespace

TeardownReport DriverCore::Teardown() {
  TeardownReport report;
  if (closed_) return report;
  faults_.DisableAll();
  auto note = [&report](const char* call, const Status& s) {
    if (!s.ok()) report.errors.push_back(std::string(call) + ": " + s.message);
  };
  // Whatever a driver call answers here, the record goes: there is no later chance to retry, and
  // the next steps (freeing the reservation, process exit) release what a failed step left.
  for (uint64_t va : NewestFirst(tables_.mappings)) {
    note("unmap", backend_->unmap(va, tables_.mappings[va].bytes));
    tables_.RemoveMapping(va);
    report.unmapped++;
  }
  for (uint64_t va : NewestFirst(tables_.reservations)) {
    note("addressFree", backend_->addressFree(va, tables_.reservations[va].bytes));
    tables_.RemoveReservation(va);
    report.addressesFreed++;
  }
  for (uint32_t id : NewestFirst(tables_.handles)) {
    // Every mapping is gone, so every record left is an unreleased handle (INV-NAT-1).
    note("memRelease", backend_->memRelease(tables_.handles[id].native));
    tables_.ReleaseHandle(id);
    report.handlesReleased++;
  }
  for (uint64_t va : NewestFirst(tables_.mallocs)) {
    note("free", backend_->free(va, tables_.mallocs[va].bytes));
    tables_.RemoveMalloc(va);
    report.mallocsFreed++;
  }
  if (arena_ != nullptr) {
    note("hostRelease", backend_->hostRelease(arena_, arenaBytes_));
    report.hostArenaBytes = arenaBytes_;
    arena_ = nullptr;
    arenaBytes_ = 0;
  }
  backend_->close();
  closed_ = true;
  return report;
}

}  // namespace lakebed
