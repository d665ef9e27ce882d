"""One training run under one allocator, for the GPU check of issue 15 (scripts/torch/run.sh runs them all).

    python3 train.py WORKLOAD ALLOCATOR STEPS OUTDIR [CONF [LABEL]]
      WORKLOAD   gpt2_ckpt | llama_lora (the shared traces' workloads, scripts/record-access/workloads.py)
      ALLOCATOR  native (PyTorch's own) | caching | expandable | vms | lakebed (liblakebed_torch.so)
      CONF       the policy's settings (PYTORCH_CUDA_ALLOC_CONF syntax; "default": lakebed_torch's
                 DEFAULT_CONF); LABEL names the output (default ALLOCATOR)

Same seed, same data, same model (random weights from transformers configurations: no network on the
GPU machine). Writes OUTDIR/WORKLOAD.LABEL.json: the loss and wall time of every step (synchronized
before and after), the step-time statistics over the steps after the first WARMUP (the median, the
quartiles and the mean; the four batch shapes cycle, so WARMUP=12 has each shape run three times
first), peaks (allocated, reserved) from the allocator's statistics, the device memory growth
(cuMemGetInfo), and the latency of malloc and free measured the same way in every run (a fixed seeded
sequence through torch.cuda.caching_allocator_alloc/delete, timed in Python, after training); under
the library also its own per-call latencies, the device calls and fence waits of every step, and the
snapshot it wrote (OUTDIR/WORKLOAD.LABEL.pickle.gz) for `lakebed replay`.
"""
import json
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "record-access"))

workload, allocator, steps, outdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
conf = sys.argv[5] if len(sys.argv) > 5 else ""
label = sys.argv[6] if len(sys.argv) > 6 else allocator
SEED = 1234
WARMUP = 12

import torch  # noqa: E402

import latency_probe  # noqa: E402 - beside this file

# The allocator is swapped before CUDA is initialized (initialization sets up the allocator).
# The baseline is cuMemGetInfo's free bytes with the context made and nothing allocated.
if allocator != "native":
    import lakebed_torch

    description = lakebed_torch.enable(policy=allocator, conf=None if conf == "default" else conf)
    conf = lakebed_torch._ENABLED[1]
    torch.cuda.init()
    baseline_free, total = lakebed_torch.device_memory()["baseline_free"], torch.cuda.mem_get_info()[1]
else:
    description = "PyTorch's CUDACachingAllocator"
    torch.cuda.init()
    baseline_free, total = torch.cuda.mem_get_info()

import workloads  # noqa: E402

workloads.torch = torch  # workloads.py imports torch in its main(); the step builders read the module global
torch.manual_seed(SEED)
random.seed(SEED)
torch.backends.cuda.matmul.allow_tf32 = False
build = {"gpt2_ckpt": lambda: workloads.gpt2(True), "llama_lora": workloads.llama_lora}[workload]

losses, step_ms, min_free = [], [], baseline_free
step_device = []  # under the library: each step's device calls, their time, fence waits and their time
_backward = torch.Tensor.backward
captured = {}


def backward(self, *args, **kwargs):  # the step functions drop the loss: keep it
    captured["loss"] = self.detach()
    return _backward(self, *args, **kwargs)


torch.Tensor.backward = backward
step, what = build()
device_before = lakebed_torch.device_memory() if allocator != "native" else None
for i in range(steps):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    torch.manual_seed(SEED + i)  # same data in every run
    step(i)
    torch.cuda.synchronize()
    step_ms.append((time.perf_counter() - t0) * 1000)
    losses.append(float(captured["loss"].float().item()))
    min_free = min(min_free, torch.cuda.mem_get_info()[0])
    if device_before is not None and i + 1 == WARMUP:
        warm_calls = {k: len(v) for k, v in lakebed_torch.latencies().items()}  # the calls made before the measured steps
    if device_before is not None:
        now = lakebed_torch.device_memory()
        step_device.append({k: now[k] - device_before[k] for k in ("driver_calls", "driver_ns", "fence_waits", "fence_ns")})
        device_before = now
torch.Tensor.backward = _backward

measured = step_ms[WARMUP:] if steps > WARMUP else step_ms
quartiles = statistics.quantiles(measured, n=4) if len(measured) > 1 else [measured[0]] * 3
result = {"workload": workload, "allocator": allocator, "conf": conf, "label": label, "what": what, "description": description, "steps": steps,
          "warmup_steps": min(WARMUP, steps), "losses": losses, "step_ms": step_ms,
          "median_step_ms": statistics.median(measured), "p25_step_ms": quartiles[0], "p75_step_ms": quartiles[2],
          "mean_step_ms": statistics.fmean(measured),
          "total_bytes": total, "baseline_free_bytes": baseline_free, "growth_bytes_after_steps": baseline_free - min_free}
if step_device:
    steady = step_device[WARMUP:] if steps > WARMUP else step_device
    result["step_device"] = step_device
    result["steady_per_step"] = {k: statistics.fmean(d[k] for d in steady) for k in ("driver_calls", "driver_ns", "fence_waits", "fence_ns")}
if allocator == "native":
    s = torch.cuda.memory_stats()
    result.update(peak_allocated=s["allocated_bytes.all.peak"], peak_reserved=s["reserved_bytes.all.peak"],
                  num_alloc_retries=s["num_alloc_retries"], num_ooms=s["num_ooms"])
else:
    s = lakebed_torch.memory_stats()
    mem = lakebed_torch.device_memory()
    lat = lakebed_torch.latencies()
    result.update(peak_allocated=s["allocated_bytes.all.peak"], peak_reserved=s["reserved_bytes.all.peak"],
                  num_alloc_retries=s["num_alloc_retries"], num_ooms=s["num_ooms"],
                  driver_peak_physical=mem["peak_physical"], fence_waits=mem["fence_waits"], fence_ms=mem["fence_ns"] / 1e6,
                  driver_calls=mem["driver_calls"], driver_ms=mem["driver_ns"] / 1e6,
                  growth_bytes_sampled=mem["baseline_free"] - mem["min_free"],
                  library_malloc_ns=latency_probe.summary(lat["malloc"]), library_free_ns=latency_probe.summary(lat["free"]))
    if steps > WARMUP:  # the same over the measured steps only (after the warm-up's device calls)
        for name in ("malloc", "free"):
            v = lat[name][warm_calls[name]:]
            result[f"library_{name}_ns_measured_steps"] = {**latency_probe.summary(v), "mean": statistics.fmean(v)}
    lakebed_torch.dump_snapshot(os.path.join(outdir, f"{workload}.{label}.pickle.gz"))

# The same malloc/free sequence in every run, timed the same way (Python included in both).
result.update(latency_probe.python_latency(torch, SEED))

with open(os.path.join(outdir, f"{workload}.{label}.json"), "w") as f:
    json.dump(result, f, indent=1)
print(json.dumps({k: result.get(k) for k in ("workload", "label", "median_step_ms", "p25_step_ms", "p75_step_ms", "peak_allocated", "peak_reserved", "steady_per_step")}))
