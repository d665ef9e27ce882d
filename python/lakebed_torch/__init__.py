"""Train under a lakebed policy: PyTorch's CUDAPluggableAllocator backed by liblakebed_torch.so.

    import lakebed_torch
    lakebed_torch.enable(policy="lakebed", conf="")   # before the first CUDA allocation
    ...train...
    lakebed_torch.dump_snapshot("run.pickle")          # then: lakebed replay run.pickle / lakebed verify run.pickle

The library (packages/torch, built by `npm run build`; `lakebed torch` prints where it is) is the
policy's own WebAssembly compiled to C and linked with lakebed's native CUDA driver: the allocation
decisions are the simulator's, on real GPU memory. This module only loads it, installs it and reads
it back: memory statistics under torch.cuda.memory_stats()'s names (a pluggable allocator has none
of its own), and a snapshot in torch.cuda.memory._dump_snapshot's format from the library's trace,
read from one copy of the library's state taken at one moment (snapshot() says why).

The library's trace keeps its newest LAKEBED_TORCH_TRACE_MAX_ENTRIES entries (default 2,097,152, 40 bytes
each; 0 records none), a ring as _record_memory_history(max_entries=...) keeps: a longer job's snapshot
starts mid-run (dump_snapshot warns) and lakebed rebuilds the state before it. The snapshot names where
each empty_cache() began (allocator_settings' lakebed_empty_cache_at) and the device's total memory
(lakebed_device_total), which PyTorch's cannot.

What a pluggable allocator cannot do (PyTorch's CUDAPluggableAllocator raises "does not yet
support"): torch.cuda.memory_stats / memory_allocated / _record_memory_history / _snapshot, CUDA
graphs' private pools (torch.cuda.graph, torch.compile's reduce-overhead mode), cudnn.benchmark's
workspace sizing (cacheInfo), IPC of device pointers. An out-of-memory raises torch.OutOfMemoryError
(torch.cuda.OutOfMemoryError) with PyTorch's usual "CUDA out of memory. Tried to allocate ..."
message: the library throws c10's own exception (packages/torch/src/native/torch_errors.h); where
it cannot find it in the loaded PyTorch, enable() warns and the error is a RuntimeError with that
message (is_out_of_memory(e) tells it apart).
"""
import ctypes
import gzip
import os
import pickle
import warnings

__all__ = ["enable", "open_host", "library_path", "memory_stats", "dump_snapshot", "snapshot", "is_out_of_memory", "latencies", "device_memory"]

_LIB = None
_ENABLED = None  # (policy, conf) once enabled

# packages/traces' Action numbers -> PyTorch's device_traces action names (trace_log.h)
_ACTIONS = {1: "alloc", 2: "free_requested", 3: "free_completed", 4: "segment_alloc", 5: "segment_free",
            6: "segment_map", 7: "segment_unmap", 8: "oom"}
_BLOCK_STATES = {0: "active_allocated", 1: "active_pending_free", 2: "inactive"}


def library_path():
    """LAKEBED_TORCH_LIB, else the build beside this repository (packages/torch/build)."""
    path = os.environ.get("LAKEBED_TORCH_LIB")
    if path:
        return path
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "liblakebed_torch.so"),
                      os.path.join(here, "..", "..", "packages", "torch", "build", "liblakebed_torch.so")):
        if os.path.exists(candidate):
            return os.path.normpath(candidate)
    raise FileNotFoundError("liblakebed_torch.so not found: build it (npm run build, needs apt-get install wabt g++) "
                            "or set LAKEBED_TORCH_LIB; `lakebed torch` prints where it is")


def _load():
    global _LIB
    if _LIB is None:
        lib = ctypes.CDLL(library_path())
        u64, c_int, c_double, c_char_p = ctypes.c_uint64, ctypes.c_int, ctypes.c_double, ctypes.c_char_p
        lib.lakebed_open.argtypes = [c_char_p, c_char_p, c_char_p, c_int, u64, c_int]
        lib.lakebed_last_error.restype = c_char_p
        lib.lakebed_description.restype = c_char_p
        lib.lakebed_stat_name.restype = c_char_p
        lib.lakebed_stats_read.argtypes = [ctypes.POINTER(c_double), c_int]
        p64 = ctypes.POINTER(u64)
        if hasattr(lib, "lakebed_snapshot_take"):  # a library built before it has none: snapshot() says to rebuild
            snap = ctypes.c_void_p
            lib.lakebed_snapshot_take.restype = snap
            lib.lakebed_snapshot_free.argtypes = [snap]
            lib.lakebed_snapshot_trace_count.argtypes = [snap]
            lib.lakebed_snapshot_trace_count.restype = u64
            lib.lakebed_snapshot_trace_read.argtypes = [snap, u64, u64, ctypes.POINTER(ctypes.c_uint8), p64, p64, p64,
                                                        ctypes.POINTER(ctypes.c_int64)]
            lib.lakebed_snapshot_trace_read.restype = u64
            lib.lakebed_snapshot_trace_dropped.argtypes = [snap]
            lib.lakebed_snapshot_trace_dropped.restype = u64
            lib.lakebed_snapshot_empty_cache_marks.argtypes = [snap, p64, u64]
            lib.lakebed_snapshot_empty_cache_marks.restype = u64
            lib.lakebed_snapshot_segment_count.argtypes = [snap]
            lib.lakebed_snapshot_segment.argtypes = [snap, c_int, p64]
            lib.lakebed_snapshot_block_count.argtypes = [snap, c_int]
            lib.lakebed_snapshot_block.argtypes = [snap, c_int, c_int, p64]
        lib.lakebed_latency_read.argtypes = [c_int, ctypes.POINTER(ctypes.c_uint32), u64]
        lib.lakebed_latency_read.restype = u64
        lib.lakebed_pending_frees.restype = u64
        if hasattr(lib, "lakebed_device_total"):  # an older library has none: snapshot() then says to rebuild
            lib.lakebed_device_total.restype = u64
        lib.lakebed_check.restype = c_char_p
        lib.lakebed_memory.argtypes = [p64]
        lib.lakebed_conf_parse.argtypes = [c_char_p, ctypes.POINTER(c_double)]
        lib.lakebed_try_malloc.argtypes = [ctypes.c_size_t, u64]
        lib.lakebed_try_malloc.restype = ctypes.c_void_p
        lib.lakebed_free.argtypes = [ctypes.c_void_p, ctypes.c_size_t, c_int, ctypes.c_void_p]
        _LIB = lib
    return _LIB


# The settings enable() uses when given none: lakebed with 4 MiB large pages. On the H200 training
# runs (packages/torch/bench/results/README.md, h200-2026-12-02-c; lakebed of commit 0c0da1a) the
# policy's own 20 MiB pages held 1.045 (GPT-2) and 1.054 (Llama LoRA) x the peak allocated bytes,
# 8 MiB pages 1.024 and 1.026, 4 MiB 1.019 and 1.022, and the simulator predicted every one to the
# byte. With lakebed as of commit 7721b54 (aliased chunks, fit window 4) the simulator puts the same
# requests at 1.045 / 1.054 (20 MiB), 1.029 / 1.032 (8 MiB) and 1.018 / 1.026 (4 MiB), with fewer
# device calls at 4 MiB (2,888 and 961 over the 50 steps) than the older policy made at 8 (4,215 and
# 1,966). Smaller pages still cost chunk moves every step. The conf is written into the snapshot's
# settings, so `lakebed replay --policy lakebed` replays with it.
DEFAULT_CONF = {"lakebed": "lakebed_large_page_mb:4"}


def enable(policy="lakebed", conf=None, device=0, capacity_bytes=0):
    """Makes the policy PyTorch's CUDA allocator. Call before the first CUDA allocation.
    conf: PYTORCH_CUDA_ALLOC_CONF-style settings; None takes DEFAULT_CONF's for the policy.
    device: the one CUDA device this process allocates on (under torchrun, its LOCAL_RANK); a
    request for another device is refused with a RuntimeError that names it."""
    global _ENABLED
    import torch

    if conf is None:
        conf = DEFAULT_CONF.get(policy, "")
    lib = _load()
    if lib.lakebed_open(policy.encode(), conf.encode(), b"cuda", device, capacity_bytes, 0) != 0:
        raise RuntimeError("lakebed_torch: " + lib.lakebed_last_error().decode())
    allocator = torch.cuda.memory.CUDAPluggableAllocator(library_path(), "lakebed_malloc", "lakebed_free")
    hooks = allocator.allocator()
    addr = lambda name: ctypes.cast(getattr(lib, name), ctypes.c_void_p).value  # noqa: E731
    hooks.set_init_fn(addr("lakebed_init"))
    hooks.set_reset_fn(addr("lakebed_reset"))
    hooks.set_memory_fraction_fn(addr("lakebed_set_memory_fraction"))
    hooks.set_record_stream_fn(addr("lakebed_record_stream"))
    torch.cuda.memory.change_current_allocator(allocator)
    if lib.lakebed_bind_torch_errors() != 0:
        warnings.warn("lakebed_torch: out-of-memory errors will be RuntimeError, not torch.OutOfMemoryError: "
                      + lib.lakebed_last_error().decode(), RuntimeWarning, stacklevel=2)
    _ENABLED = (policy, conf)
    return lib.lakebed_description().decode()


def memory_stats():
    """The policy's statistics under torch.cuda.memory_stats()'s names (allocated_bytes.all.current, ...)."""
    lib = _load()
    n = lib.lakebed_stat_count()
    values = (ctypes.c_double * n)()
    lib.lakebed_stats_read(values, n)
    return {lib.lakebed_stat_name(i).decode(): int(values[i]) for i in range(n)}


def _trace(lib, snap):
    n = lib.lakebed_snapshot_trace_count(snap)
    action = (ctypes.c_uint8 * n)()
    addr, size, stream = (ctypes.c_uint64 * n)(), (ctypes.c_uint64 * n)(), (ctypes.c_uint64 * n)()
    time_us = (ctypes.c_int64 * n)()
    n = lib.lakebed_snapshot_trace_read(snap, 0, n, action, addr, size, stream, time_us)
    return [{"action": _ACTIONS[action[i]], "addr": addr[i], "size": size[i], "stream": stream[i],
             "time_us": time_us[i], "frames": []} for i in range(n)]


def _segments(lib, snap, device):
    segments = []
    out = (ctypes.c_uint64 * 4)()
    for i in range(lib.lakebed_snapshot_segment_count(snap)):
        lib.lakebed_snapshot_segment(snap, i, out)
        seg_addr, seg_size, seg_stream, expandable = out[0], out[1], out[2], out[3]
        blocks, allocated, active, requested = [], 0, 0, 0
        for j in range(lib.lakebed_snapshot_block_count(snap, i)):
            lib.lakebed_snapshot_block(snap, i, j, out)
            state = _BLOCK_STATES[out[3]]
            blocks.append({"address": out[0], "size": out[1], "requested_size": out[2], "state": state, "frames": []})
            if state != "inactive":
                active += out[1]
                requested += out[2]
            if state == "active_allocated":
                allocated += out[1]
        sizes = [b["size"] for b in blocks if b["state"] != "inactive"]
        small = all(x <= 1 << 20 for x in sizes) if sizes else (seg_size == 2 << 20 if not expandable else seg_size % (20 << 20) != 0)
        segments.append({"device": device, "address": seg_addr, "total_size": seg_size, "stream": seg_stream,
                         "segment_type": "small" if small else "large",
                         "allocated_size": allocated, "active_size": active, "requested_size": requested,
                         "is_expandable": bool(expandable), "blocks": blocks})
    return segments


def snapshot(device=0):
    """torch.cuda.memory._snapshot()'s dict, from the library's own trace and segments.

    Its pieces (segments, trace, dropped count, empty_cache marks) are one copy the library took at one
    moment under its lock (lakebed_snapshot_take), so a snapshot taken while other threads allocate (the
    autograd engine's, an out-of-memory observer's mid-step) is still one state: the segments are those
    the trace ends in. The lock is held for the copy alone, not while this reads it."""
    lib = _load()
    if not hasattr(lib, "lakebed_snapshot_take"):
        raise RuntimeError(f"lakebed_torch: {library_path()} predates lakebed_snapshot_take; rebuild it (npm run build)")
    snap = lib.lakebed_snapshot_take()
    if not snap:
        raise MemoryError("lakebed_torch: " + lib.lakebed_last_error().decode())
    try:
        segments = _segments(lib, snap, device)
        dropped = lib.lakebed_snapshot_trace_dropped(snap)
        trace = _trace(lib, snap)
        n = lib.lakebed_snapshot_empty_cache_marks(snap, None, 0)
        marks = (ctypes.c_uint64 * max(n, 1))()
        n = lib.lakebed_snapshot_empty_cache_marks(snap, marks, n)
    finally:
        lib.lakebed_snapshot_free(snap)
    policy, conf = _ENABLED or ("lakebed", "")
    if dropped:
        # as a PyTorch snapshot whose max_entries ring wrapped: lakebed rebuilds the state before it
        warnings.warn(f"lakebed_torch: the trace kept its newest entries only ({dropped} older ones dropped, "
                      "LAKEBED_TORCH_TRACE_MAX_ENTRIES); the snapshot starts mid-run", RuntimeWarning, stacklevel=2)
    settings = _settings(policy, conf)
    # Where each torch.cuda.empty_cache() began (device_traces indices): a replay then knows every other
    # segment_unmap for the policy's own work inside a malloc (lakebed moving a chunk), which a PyTorch
    # trace cannot say (trace_log.h). In allocator_settings, a string, so that every reader and lakebed's
    # converted formats carry it unchanged.
    settings["lakebed_empty_cache_at"] = ",".join(str(marks[i]) for i in range(n))
    # The device's total memory, which sizes the policy's reservations (expandable segments reserve
    # 1 1/8 of it each): a replay reserves the same and finds the segments where they were. PyTorch's
    # snapshots do not say it and core-sim infers it from the trace's maps, which a wrapped trace may
    # no longer hold (on the host driver, whose total is the machine's memory, far below a GPU's).
    # Fixed once the library opened: read beside the copy.
    settings["lakebed_device_total"] = str(lib.lakebed_device_total())
    traces = [[] for _ in range(device)] + [trace]  # device_traces is indexed by device
    return {"segments": segments, "device_traces": traces, "allocator_settings": settings}


_ROUNDUP_KEYS = [str(1 << i) for i in range(16)]  # bucket starts in MiB, as PyTorch writes them


def _settings(policy, conf):
    """allocator_settings as PyTorch's snapshot writes them, from the settings as the library parsed them."""
    lib = _load()
    v = (ctypes.c_double * 31)()
    if lib.lakebed_conf_parse(conf.encode(), v) != 0:
        raise ValueError("lakebed_torch: " + lib.lakebed_last_error().decode())
    expandable = bool(v[3]) or policy == "expandable"
    text = conf if not expandable or "expandable_segments" in conf else ",".join(filter(None, [conf, "expandable_segments:True"]))
    return {"PYTORCH_CUDA_ALLOC_CONF": text, "max_split_size": int(v[0]) if v[0] >= 0 else (1 << 64) - 1,
            "garbage_collection_threshold": v[2], "expandable_segments": expandable,
            "roundup_power2_divisions": {k: int(v[6 + i]) for i, k in enumerate(_ROUNDUP_KEYS)},
            "lakebed_policy": policy}


def open_host(policy="lakebed", conf=""):
    """Opens the library on the host driver (memfd + mmap, no GPU, no PyTorch): for tests and for trying
    a policy's snapshot on a laptop; allocate with the library's lakebed_try_malloc / lakebed_free."""
    global _ENABLED
    lib = _load()
    if lib.lakebed_open(policy.encode(), conf.encode(), b"host", 0, 0, 1) != 0:
        raise RuntimeError("lakebed_torch: " + lib.lakebed_last_error().decode())
    _ENABLED = (policy, conf)
    return lib


def dump_snapshot(path, device=0):
    """Writes snapshot() pickled, as torch.cuda.memory._dump_snapshot does (gzipped when path ends in .gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        pickle.dump(snapshot(device), f)


def latencies():
    """Nanoseconds each malloc and free took inside the library: {'malloc': [...], 'free': [...]}."""
    lib = _load()
    result = {}
    for name, frees in (("malloc", 0), ("free", 1)):
        buf = (ctypes.c_uint32 * (1 << 22))()
        n = lib.lakebed_latency_read(frees, buf, 1 << 22)
        result[name] = list(buf[:n])
    return result


def device_memory():
    """{'baseline_free': cuMemGetInfo's free bytes at enable, 'min_free': the least seen after any call that took
    memory, 'physical': bytes the driver holds for the policy now, 'peak_physical': at most, 'fence_waits': events
    waited for before unmaps, 'fence_ns': the time those waits took, 'driver_calls': device calls the policy made
    (map, unmap, memCreate, ...), 'driver_ns': the time spent in them}."""
    out = (ctypes.c_uint64 * 8)()
    _load().lakebed_memory(out)
    return {"baseline_free": out[0], "min_free": out[1], "physical": out[2], "peak_physical": out[3],
            "fence_waits": out[4], "fence_ns": out[5], "driver_calls": out[6], "driver_ns": out[7]}


def is_out_of_memory(error):
    """Whether an exception is an out-of-memory from the library (or PyTorch's own)."""
    return "CUDA out of memory" in str(error)
