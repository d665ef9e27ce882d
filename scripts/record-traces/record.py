"""Records PyTorch memory snapshots for checking lakebed's emulation, on a real GPU.

One workload per process (PYTORCH_CUDA_ALLOC_CONF is read when the allocator starts). Each run writes
NAME.pickle.gz (torch.cuda.memory._dump_snapshot) and NAME.stats.json (torch.cuda.memory_stats() at the
end of the same run, with the device's total memory and the per-process limit), the same layout as
../shared/traces. The workloads are synthetic but shaped like training and inference: parameters that
stay, activations that grow and shrink with dynamic shapes, odd sizes that exercise rounding, big
temporaries, side streams with record_stream, empty_cache, and out-of-memory errors under a limit.

Usage: python3 record.py NAME OUTDIR   (one run; run.sh runs them all)
       python3 record.py --list        (NAME and PYTORCH_CUDA_ALLOC_CONF of each run, tab-separated)
"""
import gzip
import json
import os
import pickle
import random
import sys
import time

MiB = 1 << 20

# name -> (PYTORCH_CUDA_ALLOC_CONF, memory fraction or None, ring-buffer entries, workload, seed)
RUNS = {
    "msplit64": ("max_split_size_mb:64", None, 400000, "dynamic", 1),
    "rpd_list": ("roundup_power2_divisions:[256:1,512:2,1024:4,>:8]", None, 400000, "dynamic", 2),
    "rpd4": ("roundup_power2_divisions:4", None, 400000, "dynamic", 3),
    "gc06_cap": ("garbage_collection_threshold:0.6,max_split_size_mb:128", 0.05, 400000, "pressure", 4),
    "streams3": ("", None, 400000, "streams", 5),
    "exp_msplit": ("expandable_segments:True,max_split_size_mb:64", None, 400000, "dynamic", 6),
    "exp_streams": ("expandable_segments:True", None, 400000, "streams", 7),
    "trunc": ("", None, 3000, "dynamic", 8),
    "exp_trunc": ("expandable_segments:True", None, 3000, "dynamic", 9),
    "nonsplit": ("max_split_size_mb:64,max_non_split_rounding_mb:32", None, 400000, "dynamic", 10),
    "oom_cap": ("", 0.03, 400000, "oom", 11),
    "exp_oom_cap": ("expandable_segments:True", 0.03, 400000, "oom", 12),
    "tfm_def": ("", None, 400000, "transformer", 13),
    "tfm_exp": ("expandable_segments:True", None, 400000, "transformer", 14),
    "tfm_gc_cap": ("garbage_collection_threshold:0.7,max_split_size_mb:200,roundup_power2_divisions:2", 0.04, 400000, "transformer", 15),
    "tfm_exp_gc_cap": ("expandable_segments:True,garbage_collection_threshold:0.5", 0.04, 400000, "transformer", 16),
    "tfm_ckpt_prefetch": ("max_split_size_mb:96", None, 400000, "transformer_prefetch", 17),
    "kv_cache": ("", None, 400000, "kv_cache", 18),
    "kv_cache_exp": ("expandable_segments:True,roundup_power2_divisions:[64:8,256:4,>:1]", None, 400000, "kv_cache", 19),
    "exp_emptycache": ("expandable_segments:True", None, 400000, "dynamic_emptycache", 20),
    # Session 4: what the first twenty left out. Settings on truncated traces, garbage collection
    # without a memory fraction (PyTorch ignores the threshold then), CUDA graphs and MemPools
    # (private pools), and two devices where the machine has them.
    "msplit_trunc": ("max_split_size_mb:64,roundup_power2_divisions:4", None, 4000, "dynamic", 21),
    "streams_trunc": ("", None, 2500, "streams", 22),
    "exp_streams_trunc": ("expandable_segments:True", None, 2500, "streams", 23),
    "gc_nocap": ("garbage_collection_threshold:0.6", None, 400000, "pressure", 24),
    "graphs": ("", None, 400000, "graphs", 25),
    "graphs_exp": ("expandable_segments:True", None, 400000, "graphs", 26),
    "mempool": ("", None, 400000, "mempool", 27),
    "two_devices": ("", None, 400000, "two_devices", 28),
    "exp_two_devices": ("expandable_segments:True", None, 400000, "two_devices", 29),
    # The free-cached-blocks-and-retry path with oversize blocks (max_split_size_mb) under a limit,
    # the same with a ring buffer of 3,000 (which this run does not fill), and settings combined with side streams under a limit.
    "msplit_oom_cap": ("max_split_size_mb:128", 0.03, 400000, "oom", 30),
    "rpd_oom_cap_ring": ("roundup_power2_divisions:[128:2,>:4]", 0.03, 3000, "oom", 31),
    "streams_gc_cap": ("garbage_collection_threshold:0.5,max_split_size_mb:96", 0.1, 400000, "streams", 32),
    "exp_gc_nocap": ("expandable_segments:True,garbage_collection_threshold:0.6", None, 400000, "pressure", 33),
    "kv_cache_msplit": ("max_split_size_mb:32,roundup_power2_divisions:2", None, 400000, "kv_cache", 34),
}


def odd_size(rng):
    """Bytes for one tensor: mostly activation-like sizes, some tiny, some odd, a few large."""
    r = rng.random()
    if r < 0.25:
        return rng.randint(1, 1 << 20)  # small pool
    if r < 0.55:
        return rng.randint(1 << 20, 12 * MiB)
    if r < 0.85:
        return rng.randint(12 * MiB, 120 * MiB)
    if r < 0.97:
        return rng.choice([64, 96, 128, 200, 256, 300]) * MiB + rng.randint(0, 3) * 4096
    return rng.randint(300 * MiB, 700 * MiB)


def tensor(nbytes):
    return torch.empty(nbytes, dtype=torch.uint8, device="cuda")


def dynamic(rng, steps=60):
    params = [tensor(odd_size(rng)) for _ in range(40)]
    for step in range(steps):
        scale = rng.uniform(0.4, 1.6)
        acts = []
        for _ in range(rng.randint(20, 60)):
            acts.append(tensor(max(1, int(odd_size(rng) * scale))))
            if acts and rng.random() < 0.3:
                acts.pop(rng.randrange(len(acts)))
        tmp = tensor(int(rng.randint(100, 400) * MiB * scale))
        del tmp
        while acts:
            acts.pop() if rng.random() < 0.7 else acts.pop(rng.randrange(len(acts)))
        if step % 20 == 19:
            torch.cuda.empty_cache()
        if step % 7 == 0:
            params.append(tensor(odd_size(rng)))
    del params


def pressure(rng, steps=50):
    """Works near the per-process limit, so garbage collection and the free-and-retry path run."""
    keep = [tensor(rng.randint(20, 200) * MiB) for _ in range(6)]
    for _ in range(steps):
        acts = []
        for _ in range(rng.randint(10, 30)):
            try:
                acts.append(tensor(odd_size(rng)))
            except torch.OutOfMemoryError:
                break
            if rng.random() < 0.4:
                acts.pop(rng.randrange(len(acts)))
        rng.shuffle(acts)
        del acts
    del keep


def oom(rng, steps=40):
    """Runs into the limit on purpose and carries on after each out-of-memory error."""
    held = []
    for _ in range(steps):
        try:
            held.append(tensor(odd_size(rng) * rng.randint(1, 4)))
        except torch.OutOfMemoryError:
            for _ in range(len(held) // 2):
                held.pop(rng.randrange(len(held)))
    del held


def streams(rng, steps=40):
    """A side stream copies the next batch in (record_stream); a third does unrelated work."""
    copy = torch.cuda.Stream()
    other = torch.cuda.Stream()
    main = torch.cuda.current_stream()
    params = [tensor(odd_size(rng)) for _ in range(20)]
    nxt = None
    for _ in range(steps):
        with torch.cuda.stream(copy):
            incoming = tensor(rng.randint(4, 64) * MiB)
        main.wait_stream(copy)
        incoming.record_stream(main)
        with torch.cuda.stream(other):
            side = [tensor(odd_size(rng)) for _ in range(rng.randint(2, 8))]
        acts = [tensor(odd_size(rng)) for _ in range(rng.randint(10, 30))]
        if nxt is not None:
            del nxt
        nxt = incoming
        del incoming
        with torch.cuda.stream(other):
            del side
        del acts
    torch.cuda.synchronize()
    del params, nxt


def transformer(rng, steps=12, prefetch=False, checkpoint=False):
    """A small transformer trained with AdamW under bf16 autocast, batch and sequence length varying."""
    nn = torch.nn
    layers = nn.TransformerEncoder(nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True), 6).cuda()
    head = nn.Linear(512, 4096).cuda()
    params = list(layers.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-4)
    copy = torch.cuda.Stream() if prefetch else None
    main = torch.cuda.current_stream()

    def batch():
        b, t = rng.randint(4, 16), rng.choice([128, 192, 256, 384, 512])
        return torch.randn(b, t, 512, device="cuda"), torch.randint(0, 4096, (b, t), device="cuda")

    nxt = None
    for step in range(steps):
        if prefetch:
            with torch.cuda.stream(copy):
                nxt_batch = batch()
            main.wait_stream(copy)
            for x in nxt_batch:
                x.record_stream(main)
            x, y = nxt_batch
            del nxt_batch
        else:
            x, y = batch()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if checkpoint or (prefetch and step % 2 == 0):
                h = torch.utils.checkpoint.checkpoint(layers, x, use_reentrant=False)
            else:
                h = layers(x)
            loss = nn.functional.cross_entropy(head(h).float().view(-1, 4096), y.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del x, y, h, loss
        if step == 6:
            torch.cuda.empty_cache()
    del layers, head, params, opt


def transformer_prefetch(rng):
    transformer(rng, steps=12, prefetch=True)


def kv_cache(rng, requests=6):
    """Decoding with KV caches that grow by a token at a time (torch.cat), several requests at once."""
    layers, heads, dim = 8, 16, 64
    for _ in range(requests):
        batch = rng.randint(1, 8)
        prompt = rng.randint(32, 256)
        cache = [torch.randn(2, batch, heads, prompt, dim, device="cuda", dtype=torch.float16) for _ in range(layers)]
        for _ in range(rng.randint(32, 160)):
            for i in range(layers):
                new = torch.randn(2, batch, heads, 1, dim, device="cuda", dtype=torch.float16)
                cache[i] = torch.cat([cache[i], new], dim=3)
            scratch = torch.empty(batch * rng.randint(1, 4) * MiB, dtype=torch.uint8, device="cuda")
            del scratch
        del cache


def dynamic_emptycache(rng):
    dynamic(rng, steps=40)
    torch.cuda.empty_cache()
    dynamic(rng, steps=20)


def graphs(rng, steps=16):
    """CUDA graphs: a captured MLP replayed between eager steps; a second graph shares the first's
    pool; the first is dropped and the cache emptied halfway."""
    nn = torch.nn
    model = nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 1024)).cuda()
    static_x = torch.randn(256, 1024, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as the CUDA graphs docs ask
        for _ in range(3):
            model(static_x)
    torch.cuda.current_stream().wait_stream(side)
    g1 = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g1):
        static_y = model(static_x)
    g2 = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g2, pool=g1.pool()):
        static_z = model(static_y) * 2
    for step in range(steps):
        static_x.copy_(torch.randn(256, 1024, device="cuda"))
        g1.replay()
        if step <= steps // 2:
            g2.replay()
        acts = [tensor(odd_size(rng)) for _ in range(rng.randint(5, 20))]
        del acts
        if step == steps // 2:
            del g2, static_z
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
    del g1, static_y
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def mempool(rng, steps=20):
    """torch.cuda.MemPool: part of the work allocates from a pool of its own."""
    pool = torch.cuda.MemPool()
    keep = []
    for step in range(steps):
        with torch.cuda.use_mem_pool(pool):
            pooled = [tensor(odd_size(rng)) for _ in range(rng.randint(2, 8))]
        eager = [tensor(odd_size(rng)) for _ in range(rng.randint(5, 15))]
        if rng.random() < 0.3:
            keep.append(pooled.pop())
        del pooled, eager
    del keep
    torch.cuda.synchronize()
    torch.cuda.empty_cache()


def two_devices(rng, steps=30):
    """The dynamic workload on every device the machine has (one is enough to record a trace)."""
    n = torch.cuda.device_count()
    for d in range(n):
        torch.cuda.set_device(d)
        tensor(1)  # create the device's context and allocator state
    held = {d: [] for d in range(n)}
    for _ in range(steps):
        for d in range(n):
            with torch.cuda.device(d):
                held[d].append(tensor(odd_size(rng)))
                acts = [tensor(odd_size(rng)) for _ in range(rng.randint(3, 12))]
                del acts
                if rng.random() < 0.4 and held[d]:
                    held[d].pop(rng.randrange(len(held[d])))
    del held
    torch.cuda.set_device(0)


WORKLOADS = {
    "graphs": graphs, "mempool": mempool, "two_devices": two_devices,
    "dynamic": dynamic, "pressure": pressure, "oom": oom, "streams": streams, "transformer": transformer,
    "transformer_prefetch": transformer_prefetch, "kv_cache": kv_cache, "dynamic_emptycache": dynamic_emptycache,
}


def main():
    if sys.argv[1] == "--list":
        for name, run in RUNS.items():
            print(f"{name}\t{run[0]}")
        return
    global torch
    import torch

    name, outdir = sys.argv[1], sys.argv[2]
    conf, fraction, entries, workload, seed = RUNS[name]
    assert os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "") == conf, "run.sh sets PYTORCH_CUDA_ALLOC_CONF"
    total = torch.cuda.get_device_properties(0).total_memory
    if fraction is not None:
        torch.cuda.set_per_process_memory_fraction(fraction)
    torch.cuda.memory._record_memory_history(enabled="all", context=None, max_entries=entries)
    t0 = time.time()
    error = None
    try:
        WORKLOADS[workload](random.Random(seed))
    except Exception as e:  # noqa: BLE001 - the run is recorded either way
        error = repr(e)
    torch.cuda.synchronize()
    snapshot = torch.cuda.memory._snapshot()
    stats = torch.cuda.memory_stats()
    stats_by_device = {d: torch.cuda.memory_stats(d) for d in range(torch.cuda.device_count())}
    with gzip.open(os.path.join(outdir, f"{name}.pickle.gz"), "wb") as f:
        pickle.dump(snapshot, f)
    meta = {
        "workload": workload,
        "alloc_conf": conf or "default",
        "seconds": round(time.time() - t0, 2),
        "error": error,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "stats": stats,
        "stats_by_device": stats_by_device,
        "device_total_memory": total,
        "memory_fraction": fraction,
        "capacity_bytes": int(fraction * total) if fraction is not None else None,
        "max_entries": entries,
    }
    with open(os.path.join(outdir, f"{name}.stats.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{name}: {len(snapshot['device_traces'][0])} events, peak reserved {stats['reserved_bytes.all.peak']}, error {error}")


if __name__ == "__main__":
    main()
