"""Writes a snapshot with python/lakebed_torch from the library on the host driver (no GPU, no PyTorch):
a seeded run of allocations and frees on two streams, some blocks left live, a few empty_cache calls.
Usage: python3 torch_snapshot.py POLICY SEED OPS OUT.pickle [CONF [GROW]]  -> prints the library's statistics
(torch.cuda.memory_stats()'s names) and its device calls ("driver_calls") as JSON. GROW: that many more
allocations at the end, each larger than any before (48 MiB and up) and kept: the peaks come last, so a
trace that LAKEBED_TORCH_TRACE_MAX_ENTRIES cut (it keeps the newest entries) still holds them."""
import ctypes
import json
import random
import sys

import lakebed_torch

policy, seed, ops, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lib = lakebed_torch.open_host(policy, sys.argv[5] if len(sys.argv) > 5 else "")
rng = random.Random(seed)
live = []
for i in range(ops):
    if live and (len(live) > 40 or rng.random() < 0.45):
        p = live.pop(rng.randrange(len(live)))
        lib.lakebed_free(p, 0, 0, None)
    else:
        size = int(2 ** rng.uniform(0, 25))
        p = lib.lakebed_try_malloc(size, 1 + rng.randrange(2))
        if p:
            live.append(p)
    if i % 500 == 499:
        lib.lakebed_reset()
for k in range(int(sys.argv[6]) if len(sys.argv) > 6 else 0):
    p = lib.lakebed_try_malloc((48 << 20) + k * (3 << 20) + rng.randrange(1 << 20), 1 + k % 2)
    assert p, "the growth phase's allocation failed"
lakebed_torch.dump_snapshot(out)
stats = lakebed_torch.memory_stats()
print(json.dumps({**stats, "driver_calls": lakebed_torch.device_memory()["driver_calls"]}))
