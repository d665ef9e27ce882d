// DriverCore: one open driver, independent of Node. It owns the live tables, the per-call counters,
// fault injection and the optional capacity, and calls its Backend once per device call. Every
// call runs the same steps, in this order:
//   1. refuse if torn down;
//   2. validate arguments and table state (granularity, ranges, handle ids): kInvalid, no driver
//      call, nothing changed;
//   3. fault injection (fault_injection.h);
//   4. capacity (memCreate/malloc only): kOutOfMemory;
//   5. the one backend call;
//   6. only if it succeeded, update the tables.
// With timing on (SetTiming), each call also leaves its CallTime (call_timing.h): the whole
// operation, steps 1-6, and the driver function alone.
// So every failure, real or injected, leaves the tables exactly as they were (the "never leaks"
// contract): there is nothing to roll back because nothing was recorded before the driver agreed.
//
// The policy (which chunk goes where) never lives here: this class only applies what it is asked.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "call_kinds.h"
#include "call_timing.h"
#include "fault_injection.h"
#include "handle_table.h"
#include "status.h"

namespace lakebed {

struct CallCounters {
  std::array<uint64_t, kCallKindCount> calls{};     // every call that reached DriverCore
  std::array<uint64_t, kCallKindCount> failures{};  // of those, the ones that did not succeed
  std::array<uint64_t, kCallKindCount> ooms{};      // of the failures, out-of-memory results
};

struct TeardownReport {
  uint64_t unmapped = 0;
  uint64_t addressesFreed = 0;
  uint64_t handlesReleased = 0;
  uint64_t mallocsFreed = 0;
  uint64_t hostArenaBytes = 0;  // the host arena's size when teardown released one, else 0
  std::vector<std::string> errors;  // driver calls that failed while tearing down
};

class DriverCore {
 public:
  // capacityBytes == 0: no limit beyond the device's own.
  DriverCore(std::unique_ptr<Backend> backend, uint64_t capacityBytes);
  ~DriverCore();
  DriverCore(const DriverCore&) = delete;
  DriverCore& operator=(const DriverCore&) = delete;

  const char* kind() const { return backend_->kind(); }
  std::string description() const { return backend_->description(); }
  uint64_t granularityBytes() const { return granularity_; }
  uint64_t capacityBytes() const { return capacity_; }
  bool closed() const { return closed_; }

  Status MemCreate(uint64_t bytes, uint32_t* handle);
  Status MemRelease(uint32_t handle);
  Status AddressReserve(uint64_t bytes, uint64_t alignmentBytes, uint64_t* va);
  Status AddressFree(uint64_t va, uint64_t bytes);
  Status Map(uint64_t va, uint64_t bytes, uint32_t handle, uint64_t offsetBytes);
  Status SetAccess(uint64_t va, uint64_t bytes);
  Status Unmap(uint64_t va, uint64_t bytes);
  Status Malloc(uint64_t bytes, uint64_t* va);
  Status Free(uint64_t va);
  Status CopyToHost(uint64_t va, void* dst, uint64_t bytes);
  Status CopyFromHost(uint64_t va, const void* src, uint64_t bytes);
  Status Memset(uint64_t va, uint8_t value, uint64_t bytes);
  Status MemGetInfo(uint64_t* freeBytes, uint64_t* totalBytes);
  Status FillPattern(uint64_t va, uint64_t bytes, uint64_t seed);
  // *mismatchedBytes: how many probed bytes differ from the pattern (0: the check passed).
  Status CheckPattern(uint64_t va, uint64_t bytes, uint64_t seed, uint64_t* mismatchedBytes);

  // Sharing chunks between processes (colocate's live half; backend.h says what each driver call
  // is). memCreateShareable and setAccessReadOnly are counted and timed as memCreate and setAccess
  // (the same driver functions with another flag). Export and import are not device calls a policy
  // makes: they are not counted; *driverNs is the driver function's time alone (the floor).
  Status MemCreateShareable(uint64_t bytes, uint32_t* handle);
  // *fd: a new descriptor the caller owns (sends it, then closes it).
  Status ExportHandle(uint32_t handle, int* fd, int64_t* driverNs);
  // A handle for a received descriptor of a `bytes` chunk; the caller closes `fd` right after.
  Status ImportHandle(int fd, uint64_t bytes, uint32_t* handle, int64_t* driverNs);
  Status SetAccessReadOnly(uint64_t va, uint64_t bytes);
  // The write DriverCore refuses, made anyway on a range tiled by read-only mappings, to show the
  // memory system itself refuses it (tests and the GPU check only): host: a CPU store, which
  // faults (SIGSEGV: run it in a process meant to die); cuda: cuMemsetD8, which the driver refuses.
  Status WriteThroughReadOnly(uint64_t va, uint64_t bytes);

  // The host tier (core-sim's device.ts): one arena of pinned host memory at a time, addressed by
  // offset. Copies check the arena range and the device range
  // (mapped with access, or inside a malloc) as copyToHost does, and never run past either.
  Status HostReserve(uint64_t bytes);
  Status CopyOut(uint64_t va, uint64_t hostOffset, uint64_t bytes);
  Status CopyIn(uint64_t hostOffset, uint64_t va, uint64_t bytes);
  Status HostRelease();
  // The arena's bytes (0: none held now).
  uint64_t hostArenaBytes() const { return arenaBytes_; }
  // The arena itself, for a check or a benchmark that reads what was copied (nullptr: none).
  const uint8_t* hostArena() const { return arena_; }

  // Releases everything, newest first within each table, in dependency order (mappings, then
  // reservations, then handles, then mallocs, then the host arena), then closes the backend. Idempotent. Fault
  // injection is off during teardown: exit cleanup must not be made to fail on purpose.
  TeardownReport Teardown();

  // Per-call timing, off until asked for (a benchmark's timed recorder). Turning it on measures
  // the clock's own cost (clockReadNs) and starts an empty log.
  void SetTiming(bool on);
  // The calls timed since timing went on or since the last take, oldest first; forgets them.
  std::vector<CallTime> TakeTimes();
  double clockReadNs() const { return clockReadNs_; }

  FaultInjector& faults() { return faults_; }
  const CallCounters& counters() const { return counters_; }
  const LiveTables& tables() const { return tables_; }

 private:
  // Steps 1-3 of every call: torn down? `validate` (step 2)? an injected fault? Ok when the call
  // may go on to the driver.
  template <class Validate>
  Status Admit(CallKind kind, Validate validate) {
    if (closed_) return Closed();
    Status s = validate();
    if (!s.ok()) return s;
    return faults_.Check(kind, oomName_);
  }
  // The start of every call: its start time when timing is on, else 0.
  int64_t Begin() {
    if (!timing_) return 0;
    backend_->ResetDriverNs();
    return MonotonicNs();
  }
  // Counts the call and its outcome (step 6 happened in the caller when the status is Ok), and
  // logs its time when timing is on (t0: what Begin returned).
  Status Finish(CallKind kind, int64_t t0, Status status);
  Status Closed() const;
  Status CheckRange(uint64_t va, uint64_t bytes, bool granular) const;
  Status CheckAccessible(uint64_t va, uint64_t bytes, bool write = false) const;
  // [va, va+bytes) is exactly covered by whole mappings (cuMemUnmap/cuMemSetAccess): in tiles_.
  Status CheckTiled(uint64_t va, uint64_t bytes);
  Status CheckCapacity(uint64_t bytes) const;
  // [hostOffset, hostOffset+bytes) inside the arena, and [va, va+bytes) accessible.
  Status CheckCopy(uint64_t va, uint64_t hostOffset, uint64_t bytes, bool write) const;

  std::unique_ptr<Backend> backend_;
  const uint64_t granularity_;
  const uint64_t capacity_;
  // What an out-of-memory result is called by this driver, for capacity and injected OOMs.
  const char* const oomName_;
  bool closed_ = false;
  LiveTables tables_;
  FaultInjector faults_;
  CallCounters counters_;
  std::vector<uint8_t> probe_;  // scratch for pattern probes
  // INV-NAT-ARENA  arena_ == nullptr exactly when arenaBytes_ == 0 (no arena held).
  uint8_t* arena_ = nullptr;
  uint64_t arenaBytes_ = 0;
  std::vector<LiveTables::MappingIt> tiles_;  // scratch: the mappings a setAccess or unmap covers
  bool timing_ = false;
  double clockReadNs_ = 0;
  std::vector<CallTime> times_;
};

}  // namespace lakebed
