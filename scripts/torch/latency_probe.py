"""Allocation and free latency measured the same way under every allocator (issue 15: "beside the
native allocator's, measured in the same run").

PyTorch's own allocator has no timer inside, so the one measure that is the same for it and for the
library is taken from Python: a fixed seeded sequence of torch.cuda.caching_allocator_alloc /
caching_allocator_delete calls (sizes 512 B to 64 MiB, at most 64 live), each call timed around it,
Python's own cost included (the same in every run). Run after the measured steps, outside them.
"""
import random
import time


def quantile(values, p):
    """The value at rank p of the sorted values (None for none): the nearest rank, as train.py has reported it."""
    if not values:
        return None
    s = sorted(values)
    return s[int(p * (len(s) - 1))]


def summary(values):
    """{"n", "median", "p99"} of latencies in nanoseconds."""
    return {"n": len(values), "median": quantile(values, 0.5), "p99": quantile(values, 0.99)}


def python_latency(torch, seed, calls=20000):
    """{"python_malloc_ns", "python_free_ns"}: the seeded sequence's alloc and delete times."""
    rng = random.Random(seed)
    stream = torch.cuda.current_stream().cuda_stream
    live, t_alloc, t_free = [], [], []
    for _ in range(calls):
        if live and (len(live) >= 64 or rng.random() < 0.5):
            p = live.pop(rng.randrange(len(live)))
            t0 = time.perf_counter_ns()
            torch.cuda.caching_allocator_delete(p)
            t_free.append(time.perf_counter_ns() - t0)
        else:
            size = int(2 ** rng.uniform(9, 26))
            t0 = time.perf_counter_ns()
            p = torch.cuda.caching_allocator_alloc(size, stream=stream)
            t_alloc.append(time.perf_counter_ns() - t0)
            live.append(p)
    for p in live:
        torch.cuda.caching_allocator_delete(p)
    return {"python_malloc_ns": summary(t_alloc), "python_free_ns": summary(t_free)}
