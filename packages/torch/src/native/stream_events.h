// Events on streams: the one way the allocator learns that work queued on a stream has finished,
// as PyTorch's own allocator does (an event recorded at free, queried before reuse, processed on
// later calls). Never a device synchronization and never Python: an event is recorded on one
// stream, queried without blocking, and waited on (the calling thread only) where a policy is
// about to unmap memory that stream's work may still touch.
//
// Two kinds, chosen with the driver:
//   cuda  CUevent of the CUDA driver (libcuda.so.1, looked up at run time like native-cuda's
//         loader: the library loads without a GPU); cudaStream_t and CUstream are one handle.
//   host  streams simulated by the program that drives the library (the test harness gives its
//         record/query/wait callbacks); with none given, host memory has no queued work and every
//         event is complete when recorded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace lakebed::torch {

class StreamEvents {
 public:
  virtual ~StreamEvents() = default;
  // A new event after the work queued on `stream` so far; its token (never 0).
  virtual uint64_t Record(uint64_t stream) = 0;
  // Whether the work before the event finished; false while it runs.
  virtual bool Query(uint64_t token) = 0;
  // Blocks this thread until the work before the event finished.
  virtual void Wait(uint64_t token) = 0;
  // The token is not used again.
  virtual void Release(uint64_t token) = 0;
  // Where a call failed (a driver error), one line; empty when none did.
  virtual std::string TakeError() { return {}; }
};

// The host harness's simulated streams (C callbacks, ctx passed back).
struct HostStreamCallbacks {
  uint64_t (*record)(void* ctx, uint64_t stream);
  int (*query)(void* ctx, uint64_t token);
  void (*wait)(void* ctx, uint64_t token);
  void (*release)(void* ctx, uint64_t token);
  void* ctx;
};

// CUDA events on device `ordinal`'s primary context; nullptr with *why set when the driver is not there.
std::unique_ptr<StreamEvents> OpenCudaEvents(int ordinal, std::string* why);
// Host streams: the callbacks when given (record non-null), else events complete at once.
std::unique_ptr<StreamEvents> MakeHostEvents(const HostStreamCallbacks* callbacks);

}  // namespace lakebed::torch
