#include "device_imports.h"

#include <algorithm>

#include "core_sim.h"
#include "steady_clock.h"
#include "wasm-rt.h"


namespace lakebed::torch {

namespace {
constexpr double kRefused = -1;  // the addon's kOom: out of memory, or a refused map/setAccess
uint64_t U64(double v) { return static_cast<uint64_t>(v); }
bool Refusal(const Status& s) { return s.code == Status::Code::kOutOfMemory || s.code == Status::Code::kInjected; }
}  // namespace

DeviceImports::DriverTimer::DriverTimer(DeviceImports* owner) : owner_(owner), start_(SteadyNs()) {}
DeviceImports::DriverTimer::~DriverTimer() {
  owner_->driverCalls_++;
  owner_->driverNs_ += static_cast<uint64_t>(SteadyNs() - start_);
}

uint64_t DeviceImports::Model(uint64_t driverVa) {
  const double m = modelAddress_ ? modelAddress_(static_cast<double>(driverVa)) : -1;
  return m >= 0 ? static_cast<uint64_t>(m) : driverVa;
}

void DeviceImports::ResolvePending() {
  for (uint64_t n : pending_) {
    TraceEntry* entry = trace_->atAbsolute(n);
    if (!entry) continue;  // the cap dropped it already
    TraceEntry& e = *entry;
    const double m = modelAddress_ ? modelAddress_(static_cast<double>(e.addr)) : -1;
    if (m >= 0) e.addr = static_cast<uint64_t>(m);
  }
  pending_.clear();
}

void DeviceImports::Segment(TraceAction action, uint64_t driverVa, uint64_t bytes, uint64_t stream) {
  ResolvePending();
  if (!trace_->recording()) return;
  if (action == TraceAction::kSegmentAlloc) {
    // the model range does not exist yet: the entry gets its address at the next resolve (by its
    // absolute number: the cap may drop older entries meanwhile, which moves the kept indices)
    trace_->Add(action, driverVa, bytes, stream);
    pending_.push_back(trace_->total() - 1);
    return;
  }
  const uint64_t va = Model(driverVa);
  if (action == TraceAction::kSegmentUnmap) return TraceUnmap(va, bytes);
  if (action != TraceAction::kSegmentMap) return trace_->Add(action, va, bytes, stream);
  const uint64_t before = trace_->total();
  trace_->AddRange(action, va, bytes, stream);
  if (trace_->total() > before) {
    traceMapped_[va] = {bytes, stream};
  } else {  // merged into the last entry (same stream): its range grew
    const TraceEntry& last = trace_->at(trace_->size() - 1);
    traceMapped_[last.addr] = {last.size, last.stream};
  }
}

void DeviceImports::TraceUnmap(uint64_t va, uint64_t bytes) {
  const uint64_t end = va + bytes;
  auto it = traceMapped_.upper_bound(va);
  if (it != traceMapped_.begin()) --it;
  while (it != traceMapped_.end() && it->first < end) {
    const uint64_t s = it->first, e = it->first + it->second.size, stream = it->second.stream;
    if (e <= va) {
      ++it;
      continue;
    }
    const uint64_t cutFrom = std::max(s, va), cutTo = std::min(e, end);
    // the stream the range was mapped on (its segment's), not the request's that releases it
    trace_->Add(TraceAction::kSegmentUnmap, cutFrom, cutTo - cutFrom, stream);
    it = traceMapped_.erase(it);
    if (s < cutFrom) traceMapped_[s] = {cutFrom - s, stream};
    if (cutTo < e) it = traceMapped_.emplace(cutTo, TraceRange{e - cutTo, stream}).first, ++it;
  }
}

void DeviceImports::SampleFree() {
  uint64_t freeBytes = 0, totalBytes = 0;
  if (driver_->MemGetInfo(&freeBytes, &totalBytes).ok()) minFree_ = std::min(minFree_, freeBytes);
}

void DeviceImports::Took(uint64_t bytes) {
  physical_ += bytes;
  peakPhysical_ = std::max(peakPhysical_, physical_);
  SampleFree();
}

void DeviceImports::Fail(const char* call, const Status& s) {
  if (error_.empty())
    error_ = std::string(driver_->kind()) + " driver: " + call + " failed (" + StatusCodeName(s.code) +
             (s.driverError.empty() ? "" : ", " + s.driverError) + "): " + s.message;
}

// Each import logs its call before making it (a call that fails is in the log, as the simulator
// counts a call before it can fail), like native-cuda's bindDriver.

int32_t DeviceImports::memCreate(double bytes) {
  calls_->Add(CallKind::kMemCreate, U64(bytes));
  uint32_t handle = 0;
  const Status s = Timed([&] { return driver_->MemCreate(U64(bytes), &handle); });
  if (s.code == Status::Code::kOutOfMemory) return -1;
  if (!s.ok()) {
    Fail("memCreate", s);
    return 0;
  }
  handleBytes_[handle] = U64(bytes);
  Took(U64(bytes));
  return static_cast<int32_t>(handle);
}

void DeviceImports::memRelease(int32_t handle) {
  const auto it = handleBytes_.find(static_cast<uint32_t>(handle));
  calls_->Add(CallKind::kMemRelease, it == handleBytes_.end() ? 0 : it->second);
  const Status s = Timed([&] { return driver_->MemRelease(static_cast<uint32_t>(handle)); });
  if (!s.ok()) return Fail("memRelease", s);
  if (it != handleBytes_.end()) {
    physical_ -= it->second;
    handleBytes_.erase(it);
  }
}

double DeviceImports::addressReserve(double bytes, double alignment) {
  calls_->Add(CallKind::kAddressReserve, U64(bytes));
  uint64_t va = 0;
  const Status s = Timed([&] { return driver_->AddressReserve(U64(bytes), U64(alignment), &va); });
  if (s.code == Status::Code::kOutOfMemory) return kRefused;
  if (!s.ok()) {
    Fail("addressReserve", s);
    return 0;
  }
  return static_cast<double>(va);
}

void DeviceImports::addressFree(double va, double bytes) {
  calls_->Add(CallKind::kAddressFree, U64(bytes));
  const Status s = Timed([&] { return driver_->AddressFree(U64(va), U64(bytes)); });
  if (!s.ok()) Fail("addressFree", s);
}

int32_t DeviceImports::map(double va, double bytes, int32_t handle, double offset) {
  calls_->Add(CallKind::kMap, U64(bytes));
  const Status s = Timed([&] { return driver_->Map(U64(va), U64(bytes), static_cast<uint32_t>(handle), U64(offset)); });
  if (Refusal(s)) return -1;
  if (!s.ok()) {
    Fail("map", s);
    return 0;
  }
  mapped_[U64(va)] = {U64(bytes), stream_};
  Segment(TraceAction::kSegmentMap, U64(va), U64(bytes), stream_);
  return 0;
}

int32_t DeviceImports::setAccess(double va, double bytes) {
  calls_->Add(CallKind::kSetAccess, U64(bytes));
  const Status s = Timed([&] { return driver_->SetAccess(U64(va), U64(bytes)); });
  if (Refusal(s)) return -1;
  if (!s.ok()) Fail("setAccess", s);
  return 0;
}

void DeviceImports::unmap(double va, double bytes) {
  if (fence_) fence_(U64(va), U64(bytes));
  calls_->Add(CallKind::kUnmap, U64(bytes));
  const Status s = Timed([&] { return driver_->Unmap(U64(va), U64(bytes)); });
  if (!s.ok()) return Fail("unmap", s);
  // an unmap covers whole mappings (DriverCore checks it): forget each one inside the range
  const uint64_t start = U64(va), end = start + U64(bytes);
  for (auto it = mapped_.lower_bound(start); it != mapped_.end() && it->first < end;) it = mapped_.erase(it);
  Segment(TraceAction::kSegmentUnmap, start, U64(bytes), 0);  // each cut piece gets its map's stream
}

double DeviceImports::malloc(double bytes) {
  calls_->Add(CallKind::kMalloc, U64(bytes));
  uint64_t va = 0;
  const Status s = Timed([&] { return driver_->Malloc(U64(bytes), &va); });
  if (s.code == Status::Code::kOutOfMemory) return kRefused;
  if (!s.ok()) {
    Fail("malloc", s);
    return 0;
  }
  mallocBytes_[va] = {U64(bytes), stream_};
  Took(U64(bytes));
  Segment(TraceAction::kSegmentAlloc, va, U64(bytes), stream_);
  return static_cast<double>(va);
}

void DeviceImports::free(double va) {
  const auto it = mallocBytes_.find(U64(va));
  const uint64_t bytes = it == mallocBytes_.end() ? 0 : it->second.bytes;
  const uint64_t stream = it == mallocBytes_.end() ? 0 : it->second.stream;
  // cuMemFree waits for the device's work itself (PyTorch's release of a cudaMalloc'd segment relies
  // on that); the host driver's munmap does not, so the same fence as an unmap's comes first
  if (fence_) fence_(U64(va), bytes);
  calls_->Add(CallKind::kFree, bytes);
  const Status s = Timed([&] { return driver_->Free(U64(va)); });
  if (!s.ok()) return Fail("free", s);
  if (it != mallocBytes_.end()) {
    physical_ -= it->second.bytes;
    mallocBytes_.erase(it);
  }
  Segment(TraceAction::kSegmentFree, U64(va), bytes, stream);
}

double DeviceImports::memGetInfoFree() {
  calls_->Add(CallKind::kMemGetInfo, 0);
  uint64_t freeBytes = 0, totalBytes = 0;
  const Status s = driver_->MemGetInfo(&freeBytes, &totalBytes);
  if (!s.ok()) Fail("memGetInfo", s);
  return static_cast<double>(freeBytes);
}

double DeviceImports::memGetInfoTotal() {
  uint64_t freeBytes = 0, totalBytes = 0;
  const Status s = driver_->MemGetInfo(&freeBytes, &totalBytes);
  if (!s.ok()) Fail("memGetInfo", s);
  return static_cast<double>(totalBytes);
}

// The host tier (a tiering policy's pinned arena; core-sim's device.ts): the driver holds the
// arena and checks each copy. A copy is synchronous, so the data is in place when it returns; the
// streams' work on a block a policy moves out is the fence's to finish first (copyOut waits as
// unmap does).
int32_t DeviceImports::hostReserve(double bytes) {
  calls_->Add(CallKind::kHostReserve, U64(bytes));
  const Status s = driver_->HostReserve(U64(bytes));
  if (Refusal(s)) return -1;
  if (!s.ok()) Fail("hostReserve", s);
  return 0;
}

void DeviceImports::copyOut(double va, double hostOffset, double bytes) {
  if (fence_) fence_(U64(va), U64(bytes));
  calls_->Add(CallKind::kCopyOut, U64(bytes));
  const Status s = driver_->CopyOut(U64(va), U64(hostOffset), U64(bytes));
  if (!s.ok()) Fail("copyOut", s);
}

void DeviceImports::copyIn(double hostOffset, double va, double bytes) {
  calls_->Add(CallKind::kCopyIn, U64(bytes));
  const Status s = driver_->CopyIn(U64(hostOffset), U64(va), U64(bytes));
  if (!s.ok()) Fail("copyIn", s);
}

void DeviceImports::hostRelease() {
  calls_->Add(CallKind::kHostRelease, 0);
  const Status s = driver_->HostRelease();
  if (!s.ok()) Fail("hostRelease", s);
}

void DeviceImports::fillPattern(double va, double bytes, double seed) {
  const Status s = driver_->FillPattern(U64(va), U64(bytes), U64(seed));
  if (!s.ok()) Fail("fillPattern", s);
}

double DeviceImports::checkPattern(double va, double bytes, double seed) {
  uint64_t mismatched = 0;
  const Status s = driver_->CheckPattern(U64(va), U64(bytes), U64(seed), &mismatched);
  if (!s.ok()) Fail("checkPattern", s);
  return static_cast<double>(mismatched);
}

}  // namespace lakebed::torch

// ---- the wasm2c import symbols ------------------------------------------------------------------
// One definition per import of the compiled module (core_sim.h declares them). After each call a
// failure noted by Fail traps the instance: the trap longjmps out of the Wasm to WasmPolicy's
// guard, which reports the error; nothing of the import's own frame is left to unwind.

namespace {
lakebed::torch::DeviceImports* Of(struct Z_device_instance_t* d) { return d->imports; }
template <class T>
T Checked(struct Z_device_instance_t* d, T result) {
  if (Of(d)->HasError()) wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
  return result;
}
void CheckedVoid(struct Z_device_instance_t* d) {
  if (Of(d)->HasError()) wasm_rt_trap(WASM_RT_TRAP_UNREACHABLE);
}
}  // namespace

#define LAKEBED_IMPORT(name) Z_deviceZ_##name

extern "C" {
u32 LAKEBED_IMPORT(memCreate)(struct Z_device_instance_t* d, f64 bytes) {
  return static_cast<u32>(Checked(d, Of(d)->memCreate(bytes)));
}
void LAKEBED_IMPORT(memRelease)(struct Z_device_instance_t* d, u32 handle) {
  Of(d)->memRelease(static_cast<int32_t>(handle));
  CheckedVoid(d);
}
f64 LAKEBED_IMPORT(addressReserve)(struct Z_device_instance_t* d, f64 bytes, f64 alignment) {
  return Checked(d, Of(d)->addressReserve(bytes, alignment));
}
void LAKEBED_IMPORT(addressFree)(struct Z_device_instance_t* d, f64 va, f64 bytes) {
  Of(d)->addressFree(va, bytes);
  CheckedVoid(d);
}
u32 LAKEBED_IMPORT(map)(struct Z_device_instance_t* d, f64 va, f64 bytes, u32 handle, f64 offset) {
  return static_cast<u32>(Checked(d, Of(d)->map(va, bytes, static_cast<int32_t>(handle), offset)));
}
u32 LAKEBED_IMPORT(setAccess)(struct Z_device_instance_t* d, f64 va, f64 bytes) {
  return static_cast<u32>(Checked(d, Of(d)->setAccess(va, bytes)));
}
void LAKEBED_IMPORT(unmap)(struct Z_device_instance_t* d, f64 va, f64 bytes) {
  Of(d)->unmap(va, bytes);
  CheckedVoid(d);
}
f64 LAKEBED_IMPORT(malloc)(struct Z_device_instance_t* d, f64 bytes) {
  return Checked(d, Of(d)->malloc(bytes));
}
void LAKEBED_IMPORT(free)(struct Z_device_instance_t* d, f64 va) {
  Of(d)->free(va);
  CheckedVoid(d);
}
f64 LAKEBED_IMPORT(memGetInfoFree)(struct Z_device_instance_t* d) {
  return Checked(d, Of(d)->memGetInfoFree());
}
f64 LAKEBED_IMPORT(memGetInfoTotal)(struct Z_device_instance_t* d) {
  return Checked(d, Of(d)->memGetInfoTotal());
}
u32 LAKEBED_IMPORT(hostReserve)(struct Z_device_instance_t* d, f64 bytes) {
  return static_cast<u32>(Checked(d, Of(d)->hostReserve(bytes)));
}
void LAKEBED_IMPORT(copyOut)(struct Z_device_instance_t* d, f64 va, f64 hostOffset, f64 bytes) {
  Of(d)->copyOut(va, hostOffset, bytes);
  CheckedVoid(d);
}
void LAKEBED_IMPORT(copyIn)(struct Z_device_instance_t* d, f64 hostOffset, f64 va, f64 bytes) {
  Of(d)->copyIn(hostOffset, va, bytes);
  CheckedVoid(d);
}
void LAKEBED_IMPORT(hostRelease)(struct Z_device_instance_t* d) {
  Of(d)->hostRelease();
  CheckedVoid(d);
}
void LAKEBED_IMPORT(fillPattern)(struct Z_device_instance_t* d, f64 va, f64 bytes, f64 seed) {
  Of(d)->fillPattern(va, bytes, seed);
  CheckedVoid(d);
}
f64 LAKEBED_IMPORT(checkPattern)(struct Z_device_instance_t* d, f64 va, f64 bytes, f64 seed) {
  return Checked(d, Of(d)->checkPattern(va, bytes, seed));
}
}
