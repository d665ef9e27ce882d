"""Measures, on the GPU, what the tiering stall estimate assumes about time (docs/policies.md,
"tiering: the stall estimate"): a warm step without the recorder takes the median plain step of
NAME.stats.json, and inside a step each operator's share of the time is the share the recording
shows. It runs the same workloads as workloads.py, warm, under torch.profiler (CPU and CUDA
activity, no allocator history, no recorder), and writes NAME.clock.json: the step's wall time
(synchronized) and, for every top-level ATen operator in call order, when it started on the host
and when its last kernel ended on the GPU, in µs from the step's start.

compare-clock.mjs then sets these beside a recorded trace's scaled clock. Keep this file thin: it
measures and writes; the comparison is lakebed's.

Usage: python3 check-clock.py NAME OUTDIR   (NAME as workloads.py --list prints it)
Needs: a CUDA GPU, PyTorch, transformers (and peft for llama_lora), the same as workloads.py.
"""
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

WARM = 3


def main():
    name, outdir = sys.argv[1], sys.argv[2]
    import torch
    import workloads
    from torch.profiler import ProfilerActivity, profile

    workloads.torch = torch
    _, workload, steps = workloads.RUNS[name]
    step, _ = workloads.WORKLOADS[workload]()
    # warm, then the recording's last step (its shapes) under the profiler
    for i in range(WARM):
        step(i)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t = time.perf_counter()
        step(steps - 1)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t
    events = [e for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None]
    if not events:
        raise SystemExit(f"{name}: the profiler saw no ATen operator")
    origin = min(e.time_range.start for e in events)
    operators = []
    # The profiler's per-operator kernel records carry durations only, not times, so the GPU's end is
    # taken once for the step: the last kernel's end among the device-side events.
    from torch.autograd import DeviceType
    device_ends = [e.time_range.end for e in prof.events() if e.device_type == DeviceType.CUDA]
    step_gpu_end = max(device_ends) - origin if device_ends else None
    for e in sorted(events, key=lambda e: e.time_range.start):
        operators.append({
            "name": e.name,
            "hostStartUs": e.time_range.start - origin,
            "hostEndUs": e.time_range.end - origin,
            "gpuKernelUs": sum(k.duration for k in getattr(e, "kernels", [])),
        })
    with open(os.path.join(outdir, f"{name}.clock.json"), "w") as f:
        json.dump({"workload": name, "step": steps - 1, "torch": torch.__version__, "device": torch.cuda.get_device_name(0),
                   "stepSeconds": wall, "stepGpuEndUs": step_gpu_end, "operators": operators}, f)
    print(f"{name}: step {wall * 1000:.1f} ms, {len(operators)} operators")


if __name__ == "__main__":
    main()
