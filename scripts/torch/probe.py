"""What works and what does not under the library as PyTorch's allocator (one process, policy lakebed).
Prints one JSON object: for each feature, "ok" or the error's first line."""
import json
import sys
import warnings

import torch

import lakebed_torch

with warnings.catch_warnings(record=True) as enable_warnings:
    warnings.simplefilter("always")
    lakebed_torch.enable(policy="lakebed")
out = {"enable warnings": [str(w.message) for w in enable_warnings]}


def probe(name, f):
    try:
        r = f()
        out[name] = "ok" if r is None else r
    except Exception as e:  # noqa: BLE001 - the point is to see which ones fail, and how
        out[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"


x = torch.randn(1024, 1024, device="cuda")
probe("tensor ops", lambda: float((x @ x).sum().item()) and None)
probe("torch.cuda.memory_stats", lambda: torch.cuda.memory_stats() and None)
probe("torch.cuda.memory_allocated", lambda: torch.cuda.memory_allocated() and None)
probe("torch.cuda.max_memory_reserved", lambda: torch.cuda.max_memory_reserved() and None)
probe("torch.cuda.memory._record_memory_history", lambda: torch.cuda.memory._record_memory_history())
probe("torch.cuda.memory._snapshot", lambda: torch.cuda.memory._snapshot() and None)
probe("lakebed_torch.memory_stats", lambda: {k: v for k, v in lakebed_torch.memory_stats().items() if k in ("allocated_bytes.all.current", "reserved_bytes.all.peak")})
probe("torch.cuda.empty_cache", lambda: torch.cuda.empty_cache())
probe("torch.cuda.set_per_process_memory_fraction", lambda: torch.cuda.set_per_process_memory_fraction(0.9))


def record_stream():
    s = torch.cuda.Stream()
    y = torch.empty(1 << 20, device="cuda")
    with torch.cuda.stream(s):
        y.fill_(1)
    y.record_stream(s)
    del y
    torch.cuda.synchronize()


probe("Tensor.record_stream", record_stream)


def conv_benchmark():
    torch.backends.cudnn.benchmark = True
    conv = torch.nn.Conv2d(64, 64, 3).cuda()
    conv(torch.randn(8, 64, 64, 64, device="cuda")).sum().item()


probe("cudnn.benchmark conv", conv_benchmark)


def graph():
    g = torch.cuda.CUDAGraph()
    a = torch.randn(256, device="cuda")
    torch.cuda.synchronize()
    with torch.cuda.graph(g):
        b = a * 2
    g.replay()
    torch.cuda.synchronize()


probe("torch.cuda.graph capture", graph)


def oom():
    try:
        torch.empty(400 << 30, dtype=torch.uint8, device="cuda")
    except Exception as e:  # noqa: BLE001
        return {"type": f"{type(e).__module__}.{type(e).__qualname__}",
                "is torch.OutOfMemoryError": isinstance(e, torch.OutOfMemoryError),
                "is torch.cuda.OutOfMemoryError": isinstance(e, torch.cuda.OutOfMemoryError),
                "is_out_of_memory": lakebed_torch.is_out_of_memory(e), "message": str(e)[:400]}
    return "no error"


probe("out of memory (400 GiB)", oom)
probe("after the out of memory, a tensor", lambda: float(torch.ones(10, device="cuda").sum().item()) and None)
json.dump(out, sys.stdout, indent=1)
print()
