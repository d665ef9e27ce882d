// The Wasm's "device" imports (core-sim's assembly/device/imported.ts lists them) over one
// DriverCore, as packages/native-cuda's src/wasm-imports.ts binds them for the Node addon: each
// import is exactly one driver call, made as the policy asked, with the same answers (handle,
// address or 0 on success; -1 for out of memory or a refused map/setAccess; any other failure
// traps the instance, as the addon's DeviceError unwinds a replay). What this layer adds is what
// the wasm-imports layer adds (the call log; the sizes memRelease and free do not name), plus what
// a running program needs:
//   - the trace's segment events (segment_alloc/free for malloc/free, segment_map/unmap for
//     map/unmap), at the driver's addresses;
//   - a fence before every unmap and free: the memory may still be read or written by work queued
//     on the streams of the blocks that used it, so the allocator waits for events recorded on
//     those streams first (what PyTorch's expandable segments do with a stream synchronization,
//     and cudaFree does by itself);
//   - the mapped ranges and cudaMalloc'd segments now, for the snapshot's segment list.
//
// build.mjs checks that every import the compiled module declares is defined in
// device_imports.cc (and the link refuses undefined symbols), so a new import fails the build.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "call_log.h"
#include "driver_core.h"
#include "trace_log.h"

namespace lakebed::torch {

class DeviceImports {
 public:
  DeviceImports(DriverCore* driver, CallLog* calls, TraceLog* trace) : driver_(driver), calls_(calls), trace_(trace) {}

  // Called before each unmap with the driver range about to lose its memory.
  void SetUnmapFence(std::function<void(uint64_t va, uint64_t bytes)> fence) { fence_ = std::move(fence); }
  // The policy's model address of a driver address (core-sim's deviceModelAddress), -1 when no
  // range holds it; callable from inside an import.
  void SetModelAddress(std::function<double(double)> f) { modelAddress_ = std::move(f); }
  // Gives the segment_alloc entries recorded with the driver's address (the policy registers the
  // model range only once the malloc import returned) their model address.
  void ResolvePending();
  bool HasPendingTrace() const { return !pending_.empty(); }
  // The stream the current request runs on: a segment_alloc or segment_map is recorded with it,
  // and the range keeps it (its segment's stream, as PyTorch's segments have one each): the
  // segment_free or segment_unmap that gives the range back, whichever request's call makes it, and
  // the snapshot's segment list name that stream too.
  void SetCurrentStream(uint64_t stream) { stream_ = stream; }

  bool HasError() const { return !error_.empty(); }
  // The driver error that made an import trap, once (empty when none).
  std::string TakeError() {
    std::string e;
    e.swap(error_);
    return e;
  }

  // The imports (one per Wasm import; the names are the import names).
  int32_t memCreate(double bytes);
  void memRelease(int32_t handle);
  double addressReserve(double bytes, double alignment);
  void addressFree(double va, double bytes);
  int32_t map(double va, double bytes, int32_t handle, double offset);
  int32_t setAccess(double va, double bytes);
  void unmap(double va, double bytes);
  double malloc(double bytes);
  void free(double va);
  double memGetInfoFree();
  double memGetInfoTotal();
  int32_t hostReserve(double bytes);
  void copyOut(double va, double hostOffset, double bytes);
  void copyIn(double hostOffset, double va, double bytes);
  void hostRelease();
  void fillPattern(double va, double bytes, double seed);
  double checkPattern(double va, double bytes, double seed);

  // Physical bytes the driver holds for the policy (chunks and cudaMalloc'd segments), now and at
  // peak, and the least free device memory cuMemGetInfo reported after each call that took memory
  // (the real growth, as the live replay's MemoryWatch samples it).
  uint64_t physicalBytes() const { return physical_; }
  uint64_t peakPhysicalBytes() const { return peakPhysical_; }
  uint64_t minFreeBytes() const { return minFree_; }
  // The driver calls made for the policy and the nanoseconds spent in them (a fence's wait before
  // an unmap is the allocator's, not counted here): what a policy's device work costs a run.
  uint64_t driverCalls() const { return driverCalls_; }
  uint64_t driverNs() const { return driverNs_; }
  void SampleFree();

  // Memory the driver holds for the policy now: cudaMalloc'd segments and mapped ranges, by driver
  // address, each with the stream it was taken on.
  struct HeldRange {
    uint64_t bytes, stream;
  };
  const std::map<uint64_t, HeldRange>& mallocs() const { return mallocBytes_; }
  const std::map<uint64_t, HeldRange>& mappings() const { return mapped_; }

  // Counts memory a memCreate or malloc took.
  void Took(uint64_t bytes);
  // Sets the error for a failed call; the caller then traps.
  void Fail(const char* call, const Status& s);

 private:
  DriverCore* driver_;
  CallLog* calls_;
  TraceLog* trace_;
  std::function<void(uint64_t, uint64_t)> fence_;
  std::function<double(double)> modelAddress_;
  std::vector<uint64_t> pending_;  // trace entries still holding a driver address (absolute numbers)
  // The mapped ranges as the trace's segment_map entries name them (model addresses). An unmap is
  // written as one segment_unmap per map entry it cuts, so that the importer proves the trace
  // starts empty (packages/traces' empty-start.ts matches each unmap to one map). PyTorch writes one
  // segment_unmap across the pages of several maps; the importer's backward rebuild of such a
  // trace failed on the library's expandable traces. lakebed verify joins the cut unmaps again
  // (api's verify.ts, takenAndGivenBack) before it compares them with the emulator's whole ones.
  // Each with the stream its segment_map was recorded with, for the segment_unmap that cuts it.
  struct TraceRange {
    uint64_t size, stream;
  };
  std::map<uint64_t, TraceRange> traceMapped_;
  void TraceUnmap(uint64_t va, uint64_t bytes);
  uint64_t Model(uint64_t driverVa);
  void Segment(TraceAction action, uint64_t driverVa, uint64_t bytes, uint64_t stream);
  uint64_t stream_ = 0;
  std::string error_;
  std::unordered_map<uint32_t, uint64_t> handleBytes_;
  std::map<uint64_t, HeldRange> mallocBytes_;
  std::map<uint64_t, HeldRange> mapped_;
  // Times one driver call into driverNs_ (an RAII scope around the call).
  class DriverTimer {
   public:
    explicit DriverTimer(DeviceImports* owner);
    ~DriverTimer();

   private:
    DeviceImports* owner_;
    int64_t start_;
  };
  template <class Call>
  Status Timed(Call call) {
    DriverTimer timed(this);
    return call();
  }
  uint64_t driverCalls_ = 0;
  uint64_t driverNs_ = 0;
  uint64_t physical_ = 0;
  uint64_t peakPhysical_ = 0;
  uint64_t minFree_ = UINT64_MAX;
};

}  // namespace lakebed::torch

// The Wasm instance's device import object (wasm2c passes it to each import): the imports it calls.
struct Z_device_instance_t {
  lakebed::torch::DeviceImports* imports;
};
