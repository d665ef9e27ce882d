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

// What an out-of-memory result is called by each driver, for capacity and injected OOMs.
const char* OomName(const char* kind) {
  return kind[0] == 'c' ? "CUDA_ERROR_OUT_OF_MEMORY" : "ENOMEM";
}

}  // namespace

DriverCore::DriverCore(std::unique_ptr<Backend> backend, uint64_t capacityBytes)
    : backend_(std::move(backend)),
      granularity_(backend_->granularityBytes()),
      capacity_(capacityBytes) {}

DriverCore::~DriverCore() { Teardown(); }

Status DriverCore::Finish(CallKind kind, Status status) {
  const size_t i = static_cast<size_t>(kind);
  counters_.calls[i]++;
  if (!status.ok()) {
    counters_.failures[i]++;
    if (status.code == Status::Code::kOutOfMemory) counters_.ooms[i]++;
  }
  return status;
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

Status DriverCore::CheckAccessible(uint64_t va, uint64_t bytes) const {
  Status s = CheckRange(va, bytes, false);
  if (!s.ok()) return s;
  std::string why;
  if (!tables_.Accessible(va, bytes, &why))
    return Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) + ": " + why);
  return Status::Ok();
}

// ---- physical memory ---------------------------------------------------------------------------

Status DriverCore::MemCreate(uint64_t bytes, uint32_t* handle) {
  const CallKind k = CallKind::kMemCreate;
  if (closed_) return Finish(k, Closed());
  Status s = CheckRange(0, bytes, true);
  if (!s.ok()) return Finish(k, s);
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  if (capacity_ != 0 && tables_.totals.physicalBytes + bytes > capacity_)
    return Finish(k, Status::Make(Status::Code::kOutOfMemory, OomName(kind()),
                                  "capacity of " + Bytes(capacity_) + " reached"));
  uint64_t native = 0;
  s = backend_->memCreate(bytes, &native);
  if (!s.ok()) return Finish(k, s);
  *handle = tables_.AddHandle(native, bytes);
  return Finish(k, s);
}

Status DriverCore::MemRelease(uint32_t handle) {
  const CallKind k = CallKind::kMemRelease;
  if (closed_) return Finish(k, Closed());
  auto it = tables_.handles.find(handle);
  if (it == tables_.handles.end() || it->second.released)
    return Finish(k, Status::Invalid("handle " + std::to_string(handle) + " is not live"));
  Status s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  s = backend_->memRelease(it->second.native);
  if (!s.ok()) return Finish(k, s);
  tables_.ReleaseHandle(handle);
  return Finish(k, s);
}

// ---- virtual address ranges --------------------------------------------------------------------

Status DriverCore::AddressReserve(uint64_t bytes, uint64_t alignmentBytes, uint64_t* va) {
  const CallKind k = CallKind::kAddressReserve;
  if (closed_) return Finish(k, Closed());
  Status s = CheckRange(0, bytes, true);
  if (!s.ok()) return Finish(k, s);
  if (alignmentBytes != 0 && (alignmentBytes & (alignmentBytes - 1)) != 0)
    return Finish(k, Status::Invalid("alignment must be 0 or a power of two"));
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  uint64_t base = 0;
  s = backend_->addressReserve(bytes, alignmentBytes, &base);
  if (!s.ok()) return Finish(k, s);
  if (base + bytes > kMaxExact) {
    // Cannot happen with 48-bit (x86-64) or 49-bit (UVA) addresses; if it ever does, give the
    // range back rather than hand JavaScript an address it would round.
    backend_->addressFree(base, bytes);
    return Finish(k, Status::Make(Status::Code::kDriver, "", "reserved range is beyond 2^53"));
  }
  tables_.AddReservation(base, bytes, alignmentBytes);
  *va = base;
  return Finish(k, s);
}

Status DriverCore::AddressFree(uint64_t va, uint64_t bytes) {
  const CallKind k = CallKind::kAddressFree;
  if (closed_) return Finish(k, Closed());
  auto it = tables_.reservations.find(va);
  if (it == tables_.reservations.end())
    return Finish(k, Status::Invalid("no reservation starts at " + Hex(va)));
  if (it->second.bytes != bytes)
    return Finish(k, Status::Invalid("the reservation at " + Hex(va) + " has " +
                                     Bytes(it->second.bytes) + ", not " + Bytes(bytes)));
  if (it->second.mappings != 0)
    return Finish(k, Status::Invalid("the reservation at " + Hex(va) + " still holds " +
                                     std::to_string(it->second.mappings) + " mapping(s)"));
  Status s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  s = backend_->addressFree(va, bytes);
  if (!s.ok()) return Finish(k, s);
  tables_.RemoveReservation(va);
  return Finish(k, s);
}

// ---- mapping -----------------------------------------------------------------------------------

Status DriverCore::Map(uint64_t va, uint64_t bytes, uint32_t handle, uint64_t offsetBytes) {
  const CallKind k = CallKind::kMap;
  if (closed_) return Finish(k, Closed());
  Status s = CheckRange(va, bytes, true);
  if (!s.ok()) return Finish(k, s);
  // cuMemMap documents "offset: currently must be zero", and an H100 on driver 580 answers
  // CUDA_ERROR_NOT_SUPPORTED to any other (bench/results). The host driver could map at an
  // offset, but refuses too: a policy that runs on host memory must also run on the GPU.
  if (offsetBytes != 0)
    return Finish(k, Status::Invalid("offset must be 0 (cuMemMap maps a handle from its start)"));
  auto h = tables_.handles.find(handle);
  if (h == tables_.handles.end() || h->second.released)
    return Finish(k, Status::Invalid("handle " + std::to_string(handle) + " is not live"));
  // cuMemMap maps a handle whole: an H100 on driver 580 answers CUDA_ERROR_NOT_SUPPORTED to a
  // map of part of one (bench/results). The host driver could, and refuses alike.
  if (bytes != h->second.bytes)
    return Finish(k, Status::Invalid("a map covers its whole handle: handle " +
                                     std::to_string(handle) + " has " + Bytes(h->second.bytes) +
                                     ", not " + Bytes(bytes)));
  uint64_t base = 0;
  if (!tables_.ReservationHolding(va, bytes, &base))
    return Finish(k, Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) +
                                     " is not inside one reservation"));
  if (tables_.OverlapsMapping(va, bytes))
    return Finish(k, Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) +
                                     " overlaps an existing mapping"));
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  s = backend_->map(va, bytes, h->second.native, offsetBytes);
  if (!s.ok()) return Finish(k, s);
  tables_.AddMapping(va, bytes, handle, offsetBytes, base);
  return Finish(k, s);
}

Status DriverCore::SetAccess(uint64_t va, uint64_t bytes) {
  const CallKind k = CallKind::kSetAccess;
  if (closed_) return Finish(k, Closed());
  Status s = CheckRange(va, bytes, true);
  if (!s.ok()) return Finish(k, s);
  std::vector<uint64_t> keys;
  std::string why;
  if (!tables_.TiledByMappings(va, bytes, &keys, &why))
    return Finish(k, Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) + ": " + why));
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  s = backend_->setAccess(va, bytes);
  if (!s.ok()) return Finish(k, s);
  for (uint64_t key : keys) tables_.mappings[key].access = true;
  return Finish(k, s);
}

Status DriverCore::Unmap(uint64_t va, uint64_t bytes) {
  const CallKind k = CallKind::kUnmap;
  if (closed_) return Finish(k, Closed());
  Status s = CheckRange(va, bytes, true);
  if (!s.ok()) return Finish(k, s);
  std::vector<uint64_t> keys;
  std::string why;
  if (!tables_.TiledByMappings(va, bytes, &keys, &why))
    return Finish(k, Status::Invalid("range " + Hex(va) + " + " + Bytes(bytes) + ": " + why));
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  s = backend_->unmap(va, bytes);
  if (!s.ok()) return Finish(k, s);
  for (uint64_t key : keys) tables_.RemoveMapping(key);
  return Finish(k, s);
}

// ---- plain allocations -------------------------------------------------------------------------

Status DriverCore::Malloc(uint64_t bytes, uint64_t* va) {
  const CallKind k = CallKind::kMalloc;
  if (closed_) return Finish(k, Closed());
  Status s = CheckRange(0, bytes, false);
  if (!s.ok()) return Finish(k, s);
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  if (capacity_ != 0 && tables_.totals.physicalBytes + bytes > capacity_)
    return Finish(k, Status::Make(Status::Code::kOutOfMemory, OomName(kind()),
                                  "capacity of " + Bytes(capacity_) + " reached"));
  uint64_t base = 0;
  s = backend_->malloc(bytes, &base);
  if (!s.ok()) return Finish(k, s);
  if (base + bytes > kMaxExact) {
    backend_->free(base, bytes);
    return Finish(k, Status::Make(Status::Code::kDriver, "", "allocation is beyond 2^53"));
  }
  tables_.AddMalloc(base, bytes);
  *va = base;
  return Finish(k, s);
}

Status DriverCore::Free(uint64_t va) {
  const CallKind k = CallKind::kFree;
  if (closed_) return Finish(k, Closed());
  auto it = tables_.mallocs.find(va);
  if (it == tables_.mallocs.end())
    return Finish(k, Status::Invalid("no malloc starts at " + Hex(va)));
  Status s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  s = backend_->free(va, it->second.bytes);
  if (!s.ok()) return Finish(k, s);
  tables_.RemoveMalloc(va);
  return Finish(k, s);
}

// ---- data movement -----------------------------------------------------------------------------

Status DriverCore::CopyToHost(uint64_t va, void* dst, uint64_t bytes) {
  const CallKind k = CallKind::kCopyToHost;
  if (closed_) return Finish(k, Closed());
  Status s = CheckAccessible(va, bytes);
  if (!s.ok()) return Finish(k, s);
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  return Finish(k, backend_->copyToHost(dst, va, bytes));
}

Status DriverCore::CopyFromHost(uint64_t va, const void* src, uint64_t bytes) {
  const CallKind k = CallKind::kCopyFromHost;
  if (closed_) return Finish(k, Closed());
  Status s = CheckAccessible(va, bytes);
  if (!s.ok()) return Finish(k, s);
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  return Finish(k, backend_->copyFromHost(va, src, bytes));
}

Status DriverCore::Memset(uint64_t va, uint8_t value, uint64_t bytes) {
  const CallKind k = CallKind::kMemset;
  if (closed_) return Finish(k, Closed());
  Status s = CheckAccessible(va, bytes);
  if (!s.ok()) return Finish(k, s);
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  return Finish(k, backend_->memset(va, value, bytes));
}

Status DriverCore::MemGetInfo(uint64_t* freeBytes, uint64_t* totalBytes) {
  const CallKind k = CallKind::kMemGetInfo;
  if (closed_) return Finish(k, Closed());
  Status s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  s = backend_->memGetInfo(freeBytes, totalBytes);
  if (!s.ok()) return Finish(k, s);
  if (capacity_ != 0) {
    // The capacity is what a policy may use: report it as the device, never more than is free.
    const uint64_t used = tables_.totals.physicalBytes;
    *totalBytes = std::min(*totalBytes, capacity_);
    *freeBytes = std::min(*freeBytes, used >= capacity_ ? 0 : capacity_ - used);
  }
  return Finish(k, s);
}

Status DriverCore::FillPattern(uint64_t va, uint64_t bytes, uint64_t seed) {
  const CallKind k = CallKind::kFillPattern;
  if (closed_) return Finish(k, Closed());
  Status s = CheckAccessible(va, bytes);
  if (!s.ok()) return Finish(k, s);
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  ForEachProbe(bytes, granularity_, [&](uint64_t offset, uint64_t len) {
    probe_.resize(len);
    for (uint64_t i = 0; i < len; i++) probe_[i] = PatternByte(seed, offset + i);
    s = backend_->copyFromHost(va + offset, probe_.data(), len);
    return s.ok();
  });
  return Finish(k, s);
}

Status DriverCore::CheckPattern(uint64_t va, uint64_t bytes, uint64_t seed,
                                uint64_t* mismatchedBytes) {
  const CallKind k = CallKind::kCheckPattern;
  if (closed_) return Finish(k, Closed());
  Status s = CheckAccessible(va, bytes);
  if (!s.ok()) return Finish(k, s);
  s = faults_.Check(k, OomName(kind()));
  if (!s.ok()) return Finish(k, s);
  uint64_t bad = 0;
  ForEachProbe(bytes, granularity_, [&](uint64_t offset, uint64_t len) {
    probe_.resize(len);
    s = backend_->copyToHost(probe_.data(), va + offset, len);
    if (!s.ok()) return false;
    for (uint64_t i = 0; i < len; i++) bad += probe_[i] != PatternByte(seed, offset + i);
    return true;
  });
  if (s.ok()) *mismatchedBytes = bad;
  return Finish(k, s);
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
  backend_->close();
  closed_ = true;
  return report;
}

}  // namespace lakebed
