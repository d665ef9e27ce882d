/* liblakebed_torch.so: a lakebed policy as PyTorch's CUDAPluggableAllocator.
 *
 * PyTorch's ABI (torch/csrc/cuda/CUDAPluggableAllocator.h): malloc and free by name, and the
 * optional hooks set on the allocator object (python/lakebed_torch does all of it):
 *     lakebed_malloc, lakebed_free               torch.cuda.memory.CUDAPluggableAllocator(path, ...)
 *     lakebed_init             void(int)          set_init_fn
 *     lakebed_reset            void()             set_reset_fn (torch.cuda.empty_cache)
 *     lakebed_set_memory_fraction void(double, int) set_memory_fraction_fn
 *     lakebed_record_stream    void(void*, cudaStream_t) set_record_stream_fn
 * When the policy finds no memory, lakebed_malloc throws PyTorch's own c10::OutOfMemoryError
 * carrying PyTorch's out-of-memory message (Python: torch.OutOfMemoryError), once
 * lakebed_bind_torch_errors found it in the loaded PyTorch; before that, a std::runtime_error
 * (Python: RuntimeError). It never returns NULL for a request: PyTorch does not check.
 *
 * The rest is lakebed's own: open a policy (before the first allocation), read the statistics,
 * a snapshot's trace and segments (one copy of one moment), the device-call log and latencies. One
 * policy and one device per process. cudaStream_t is passed as a void* (the library needs no CUDA headers).
 */
#ifndef LAKEBED_TORCH_H_
#define LAKEBED_TORCH_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

void* lakebed_malloc(size_t size, int device, void* stream);
void lakebed_free(void* ptr, size_t size, int device, void* stream);
void lakebed_init(int device_count);
void lakebed_reset(void);
void lakebed_set_memory_fraction(double fraction, int device);
void lakebed_record_stream(void* ptr, void* stream);

/* Opens the allocator: policy by name (caching, expandable, vms, lakebed), conf in
 * PYTORCH_CUDA_ALLOC_CONF syntax, backend "cuda" or "host", capacity 0 for the device's.
 * 0 on success, -1 with lakebed_last_error() saying why. Without a call, the first malloc opens
 * LAKEBED_POLICY / LAKEBED_CONF (default lakebed, "") on the cuda backend. */
int lakebed_open(const char* policy, const char* conf, const char* backend, int device, uint64_t capacity_bytes,
                 int call_log);
/* The host backend with simulated streams (the test harness): record returns an event token. */
int lakebed_open_host(const char* policy, const char* conf, uint64_t capacity_bytes, uint64_t device_total_bytes,
                      int call_log, uint64_t (*record)(void*, uint64_t), int (*query)(void*, uint64_t),
                      void (*wait)(void*, uint64_t), void (*release)(void*, uint64_t), void* ctx);
void lakebed_close(void);
const char* lakebed_last_error(void);
const char* lakebed_description(void);
/* Makes out-of-memory errors PyTorch's c10::OutOfMemoryError (torch_errors.h), looked up in the c10
 * libraries the process loaded: call after importing torch. 0, or -1 with lakebed_last_error(). */
int lakebed_bind_torch_errors(void);

/* Parses settings as the library does (alloc_conf.h) into out[31]: max_split_size (-1 unlimited),
 * max_non_split_rounding, garbage_collection_threshold, expandable_segments (0/1),
 * large_segment_size, per_process_memory_fraction (0 none), the 16 roundup divisions, GMLake's
 * vmmDefragment, fragLimit, defragLevel, reuseLimit, autoGC, reAlloc, lakebed's slack_permille,
 * fit_window, large_page_mb. 0, or -1 with lakebed_last_error() saying why. */
int lakebed_conf_parse(const char* text, double out[31]);

/* lakebed_malloc without the exception: NULL when out of memory (lakebed_last_error has the message). */
void* lakebed_try_malloc(size_t size, uint64_t stream);
/* The allocator's own invariants (torch_allocator.h): "" when they hold. */
const char* lakebed_check(void);
uint64_t lakebed_pending_frees(void);

/* The policy's statistics, under PyTorch's memory_stats() names (core-sim's stats table). */
int lakebed_stat_count(void);
const char* lakebed_stat_name(int index);
int lakebed_stats_read(double* out, int count);

/* A snapshot's pieces (python/lakebed_torch's snapshot() reads them): the trace, the count of
 * entries its cap dropped, where each empty_cache began, the segments and their blocks, copied
 * together under one acquisition of the allocator's lock, so that they are of one moment while
 * other threads allocate and free (the segments are the state the trace ends in, the marks lie
 * within it). The lock is held for the copy alone; the handle is read without it, from any thread,
 * until lakebed_snapshot_free. NULL (lakebed_last_error says why) only when the copy finds no host
 * memory; before the allocator opened, an empty snapshot.
 *   trace: PyTorch's device_traces actions, packages/traces' numbers; entries from start, oldest
 *     first. The trace keeps its newest LAKEBED_TORCH_TRACE_MAX_ENTRIES entries (default 2^21, 0: no
 *     trace), as _record_memory_history(max_entries=...): dropped counts the older ones.
 *   empty_cache marks: where each torch.cuda.empty_cache() began, as indices of kept entries (its
 *     entries follow; an index equal to the count: nothing after it): the count; up to count of
 *     them into out (out may be NULL).
 *   segment i: addr, size, stream, expandable; its blocks: addr, size, requested, state
 *     (0 active_allocated, 1 active_pending_free, 2 inactive). -1 for an index out of range. */
typedef struct lakebed_snapshot lakebed_snapshot;
lakebed_snapshot* lakebed_snapshot_take(void);
void lakebed_snapshot_free(lakebed_snapshot* snapshot);
uint64_t lakebed_snapshot_trace_count(const lakebed_snapshot* snapshot);
uint64_t lakebed_snapshot_trace_read(const lakebed_snapshot* snapshot, uint64_t start, uint64_t count, uint8_t* action,
                                     uint64_t* addr, uint64_t* size, uint64_t* stream, int64_t* time_us);
uint64_t lakebed_snapshot_trace_dropped(const lakebed_snapshot* snapshot);
uint64_t lakebed_snapshot_empty_cache_marks(const lakebed_snapshot* snapshot, uint64_t* out, uint64_t count);
int lakebed_snapshot_segment_count(const lakebed_snapshot* snapshot);
int lakebed_snapshot_segment(const lakebed_snapshot* snapshot, int i, uint64_t out[4]);
int lakebed_snapshot_block_count(const lakebed_snapshot* snapshot, int i);
int lakebed_snapshot_block(const lakebed_snapshot* snapshot, int i, int j, uint64_t out[4]);

/* The trace now, as the snapshot's, each call under the lock on its own (for a single-threaded
 * reader; a snapshot reads lakebed_snapshot_take's copy instead). */
uint64_t lakebed_trace_count(void);
uint64_t lakebed_trace_read(uint64_t start, uint64_t count, uint8_t* action, uint64_t* addr, uint64_t* size,
                            uint64_t* stream, int64_t* time_us);
uint64_t lakebed_trace_dropped(void);
uint64_t lakebed_empty_cache_marks(uint64_t* out, uint64_t count);

/* The device calls made (kinds: native-cuda's CALL_KINDS indices), when opened with call_log. */
uint64_t lakebed_call_count(void);
uint64_t lakebed_call_read(uint64_t start, uint64_t count, uint8_t* kind, uint64_t* bytes);
/* Device memory: out[0] cuMemGetInfo's free bytes at open, out[1] the least free seen after any
 * call that took memory, out[2] and out[3] the physical bytes the driver holds for the policy now
 * and at peak; out[4] the events waited for before unmaps, out[5] the nanoseconds those waits took;
 * out[6] the device calls the policy made (map, unmap, memCreate, ...) and out[7] the nanoseconds
 * spent in them. 0, or -1 when not open. */
int lakebed_memory(uint64_t out[8]);
/* The device's total memory as the policy knows it (it sizes expandable reservations from it): the
 * driver's total (cuMemGetInfo), or the total lakebed_open_host was given; 0 when not open. Fixed
 * once open: a snapshot reads it beside its copy. */
uint64_t lakebed_device_total(void);
/* Nanoseconds each malloc (frees 0) or free (frees 1) took inside the library. */
uint64_t lakebed_latency_read(int frees, uint32_t* out, uint64_t count);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
