"""Step time under PyTorch's own allocator and under each policy through the library, in one call of
the device tool, measured so that a 2% difference in the median step time can be told from noise
(issue 15: GPT-2 training and Llama LoRA fine-tuning, median step within 2% of native's).

    python3 steptime.py OUTDIR BUDGET_S [options]     (scripts/torch/steptime.sh runs it)
      --workloads gpt2_ckpt,llama_lora   train.py's workloads (scripts/record-access/workloads.py);
                                         NAME*K multiplies every batch by K (a GPU-bound variant)
      --arms native,caching,expandable,native_b,vms,lakebed
                                         one process each per round; native_b is PyTorch's allocator
                                         again (the A/A control: two processes of the same allocator)
      --warmup-cycles 3 --cycles 12      cycles of the four batch shapes left out / measured
      --rounds N                         at most N rounds (default: as many as BUDGET_S allows)
      --run-timeout 120                  seconds one process may take
      --pin CPUS                         run every process on these CPUs only (a list: 2-5 or 2,3,8,9),
                                         its threads too, the same set for every arm

Why it is built this way (packages/torch/bench/results/README.md, h200-2026-12-02-c): one median
over train.py's four cycling batch shapes spans 15-30% between quartiles, and two processes of the
same allocator differed by 37% (GPT-2) and 10% (Llama). So:

- Per-shape medians: every step is timed and tagged with its shape; a process's step time is the
  mean over the four shapes of the median step of each shape (the mixture no longer adds spread).
- Many short processes, alternated: each allocator needs its own process (PyTorch's allocator can
  only be swapped before CUDA starts), so a round runs every arm once per workload and the arms'
  order rotates from round to round (drift of the machine, clocks, neighbours spreads over all of
  them; the rounds pair the arms for the bootstrap). Processes are forked from one parent that
  imported torch, transformers and peft once (no CUDA there), so a process costs its CUDA context,
  model and steps, not 10-20 s of imports, and every process starts from the same Python heap.
- Three clocks per step, with a barrier (torch.cuda.synchronize) before and after it: host wall time
  (the step time), CUDA events around it on the stream (GPU time from the first launch to the last
  kernel's end), and the host's time to enqueue it (wall and the thread's CPU time until the step
  function returned; the enqueue CPU time near the wall time means the step is launch bound), and
  the CPU time of all the process's threads over the step (autograd runs backward on a thread of
  its own, so the launching thread's CPU time is only part of the host's work; but the closing
  torch.cuda.synchronize spins, so this comes out at the step's wall time, runs h200-2026-12-02-g
  and -h, and the report's table leaves it out).
- Python's garbage collector is collected, frozen and off during the steps (as timeit does): its
  pauses land at random steps and are the same for every allocator.
- Under the library, its own time in every step: the sum of its malloc and free latencies (its
  lock, the policy, device calls and fence waits included), device calls and fence waits: a direct
  bound on what the library spends on the step's critical path.
- Allocation and free latency beside PyTorch's, in the same processes: after the steps, the same
  seeded alloc/delete sequence timed from Python under every arm (latency_probe.py), and under the
  library its own time in each malloc and free of the measured steps (median, p99).
- Where the noise is, per process: involuntary context switches, the machine's steal time
  (/proc/stat: a virtual machine's CPU taken by neighbours), the load average; steptime.sh logs the
  GPU's clocks, power and temperature beside (nvidia-smi), with each process's start and end time.

Writes OUTDIR/runs/WORKLOAD.LABEL.rROUND.json per process (and .log), OUTDIR/plan.json, OUTDIR/runs.txt.
scripts/torch/steptime-report.mjs OUTDIR turns them into the table (ratio to native, bootstrap
interval). --one runs one process in the foreground (what a forked child runs; STEPTIME_SPAWN=1 runs
every process as `python3 steptime.py --one ...` instead of forking).
"""
import argparse
import gc
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "record-access"))
SEED = 1234
SHAPES = 4  # workloads.py's gpt2 and llama_lora cycle four (batch, sequence) shapes
LIBRARY_CONF = {"lakebed": "default"}  # train.py's "default": lakebed_torch.DEFAULT_CONF


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("budget_s", type=float)
    p.add_argument("--workloads", default="gpt2_ckpt,llama_lora")
    p.add_argument("--arms", default="native,caching,expandable,native_b,vms,lakebed")
    p.add_argument("--warmup-cycles", type=int, default=3)
    p.add_argument("--cycles", type=int, default=12)
    p.add_argument("--rounds", type=int, default=1000)
    p.add_argument("--run-timeout", type=float, default=120)
    p.add_argument("--pin", default="", help="CPUs every run is confined to, e.g. 2-5 or 2,3,8,9")
    args = p.parse_args(argv)
    if args.cycles < 1 or args.warmup_cycles < 0:
        p.error("--cycles must be at least 1 and --warmup-cycles at least 0")
    return args


def allocator_of(arm):
    """The allocator an arm runs: native for native and native_*, else the policy named (lakebed_4mib -> lakebed)."""
    if arm == "native" or arm.startswith("native_"):
        return "native"
    return arm.split("_")[0]


def split_workload(name):
    """'gpt2_ckpt*4' -> ('gpt2_ckpt', 4)."""
    base, _, scale = name.partition("*")
    return base, int(scale or 1)


def cpu_list(text):
    """'2-5,8' -> {2, 3, 4, 5, 8}; '' -> None (no pinning)."""
    cpus = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus or None


def cpu_mhz(cpus):
    """/proc/cpuinfo's current clock of each CPU in cpus (None where the kernel does not say)."""
    try:
        with open("/proc/cpuinfo") as f:
            blocks = f.read().split("\n\n")
    except OSError:
        return None
    out = {}
    for b in blocks:
        fields = dict(line.split(":", 1) for line in b.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        if "processor" in fields and int(fields["processor"]) in cpus and "cpu MHz" in fields:
            out[int(fields["processor"])] = float(fields["cpu MHz"])
    return out or None


def proc_stat_cpu():
    """The machine's CPU ticks (/proc/stat's cpu line: user nice system idle iowait irq softirq steal)."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


class ScaledTorch:
    """torch, except that randint(low, high, (b, t)) draws (b * scale, t): the workload's batches, scale times larger."""

    def __init__(self, torch, scale):
        self._torch, self._scale = torch, scale

    def __getattr__(self, name):
        return getattr(self._torch, name)

    def randint(self, low, high, size, *args, **kwargs):
        size = (size[0] * self._scale, *size[1:])
        return self._torch.randint(low, high, size, *args, **kwargs)


def run_one(workload_spec, arm, round_index, position, outdir, warmup_cycles, cycles, pin=""):
    """One process's run: the allocator, the workload, every step timed; writes its JSON."""
    # Pinned before torch makes its threads (autograd's device threads, OpenMP's), which inherit the
    # set: a host-bound step's time then does not depend on which cores a process happened to get.
    pinned = cpu_list(pin)
    if pinned:
        os.sched_setaffinity(0, pinned)
    import torch

    if pinned:
        # The intra-op pool's size is not the set's: torch sized it at import (the forking parent's,
        # or this process's) from the machine's core count (cpuinfo ignores the affinity), so an
        # unpinned count of OpenMP workers would share these CPUs with the step's own threads.
        # Threads started from here on (autograd's device threads) take this count too.
        torch.set_num_threads(len(pinned))

    t_start = time.time()
    mhz_before = cpu_mhz(os.sched_getaffinity(0))
    try:  # fewer preemptions by the machine's other processes, where allowed (the same for every arm)
        os.nice(-10)
        niced = True
    except OSError:
        niced = False
    allocator = allocator_of(arm)
    workload, scale = split_workload(workload_spec)
    lib = lakebed_torch = None
    conf = ""
    if allocator != "native":
        import ctypes

        import lakebed_torch

        conf = LIBRARY_CONF.get(allocator, "")
        description = lakebed_torch.enable(policy=allocator, conf=None if conf == "default" else conf)
        conf = lakebed_torch._ENABLED[1]
        lib = lakebed_torch._load()
        lat_cap = 1 << 22
        lat_buf = (ctypes.c_uint32 * lat_cap)()
    else:
        description = "PyTorch's CUDACachingAllocator"
    torch.cuda.init()
    t_cuda = time.time()

    import latency_probe
    import workloads

    workloads.torch = torch if scale == 1 else ScaledTorch(torch, scale)
    torch.manual_seed(SEED)
    torch.backends.cuda.matmul.allow_tf32 = False
    build = {"gpt2_ckpt": lambda: workloads.gpt2(True), "gpt2": lambda: workloads.gpt2(False), "llama_lora": workloads.llama_lora}[workload]
    captured = {}
    _backward = torch.Tensor.backward

    def backward(self, *args, **kwargs):  # the step functions drop the loss: keep it
        captured["loss"] = self.detach()
        return _backward(self, *args, **kwargs)

    torch.Tensor.backward = backward
    step, what = build()
    t_built = time.time()
    warmup = warmup_cycles * SHAPES
    total = warmup + cycles * SHAPES
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(total)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(total)]
    wall_ns, enqueue_ns, enqueue_cpu_ns, process_cpu_ns, losses = [], [], [], [], []
    lib_counts, lib_device = [], []  # after each step: (mallocs, frees) so far; (driver calls, ns, fence waits, ns) so far

    def library_marks():
        lib_counts.append((lib.lakebed_latency_read(0, lat_buf, lat_cap), lib.lakebed_latency_read(1, lat_buf, lat_cap)))
        m = lakebed_torch.device_memory()
        lib_device.append((m["driver_calls"], m["driver_ns"], m["fence_waits"], m["fence_ns"]))

    if lib is not None:
        library_marks()  # before the first step
    stat0 = rusage0 = None
    for i in range(total):
        if i == warmup:
            gc.collect()
            gc.freeze()
            gc.disable()
            stat0, rusage0, load0 = proc_stat_cpu(), resource.getrusage(resource.RUSAGE_SELF), os.getloadavg()
            t_measured = time.time()
        torch.cuda.synchronize()
        torch.manual_seed(SEED + i)  # same data in every run (outside the timed span)
        t0, c0, p0 = time.perf_counter_ns(), time.thread_time_ns(), time.process_time_ns()
        starts[i].record()
        step(i)
        t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
        ends[i].record()
        torch.cuda.synchronize()
        t2, p2 = time.perf_counter_ns(), time.process_time_ns()
        wall_ns.append(t2 - t0)
        process_cpu_ns.append(p2 - p0)
        enqueue_ns.append(t1 - t0)
        enqueue_cpu_ns.append(c1 - c0)
        losses.append(float(captured["loss"].float().item()))
        if lib is not None:
            library_marks()
    t_end = time.time()
    stat1, rusage1, load1 = proc_stat_cpu(), resource.getrusage(resource.RUSAGE_SELF), os.getloadavg()
    gc.enable()
    torch.Tensor.backward = _backward
    gpu_ms = [starts[i].elapsed_time(ends[i]) for i in range(total)]

    result = {
        "workload": workload_spec, "base_workload": workload, "batch_scale": scale, "arm": arm, "allocator": allocator,
        "conf": conf, "description": description, "what": what, "round": round_index, "position": position,
        "shapes": SHAPES, "warmup_steps": warmup, "steps": total, "pid": os.getpid(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)), "intraop_threads": torch.get_num_threads(), "niced": niced,
        "unix_start": t_start, "unix_cuda": t_cuda, "unix_built": t_built, "unix_measured": t_measured, "unix_end": t_end,
        "step_wall_ms": [x / 1e6 for x in wall_ns], "step_gpu_ms": gpu_ms,
        "step_enqueue_ms": [x / 1e6 for x in enqueue_ns], "step_enqueue_cpu_ms": [x / 1e6 for x in enqueue_cpu_ns],
        "step_process_cpu_ms": [x / 1e6 for x in process_cpu_ns],
        "losses": losses,
        "measured": {
            "involuntary_switches": rusage1.ru_nivcsw - rusage0.ru_nivcsw,
            "voluntary_switches": rusage1.ru_nvcsw - rusage0.ru_nvcsw,
            "loadavg_before": load0, "loadavg_after": load1,
            "cpu_mhz_before": mhz_before, "cpu_mhz_after": cpu_mhz(os.sched_getaffinity(0)),
        },
    }
    if stat0 and stat1:
        d = [b - a for a, b in zip(stat0, stat1)]
        result["measured"]["machine_cpu_ticks"] = dict(zip(["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"], d))
    if lib is not None:
        lat = {name: list(lat_buf[:lib.lakebed_latency_read(frees, lat_buf, lat_cap)]) for name, frees in (("malloc", 0), ("free", 1))}
        lib_ns, calls, device_ns, fences, fence_ns = [], [], [], [], []
        for i in range(total):
            (m0, f0), (m1, f1) = lib_counts[i], lib_counts[i + 1]
            lib_ns.append(sum(lat["malloc"][m0:m1]) + sum(lat["free"][f0:f1]))
            calls.append((m1 - m0) + (f1 - f0))
            a, b = lib_device[i], lib_device[i + 1]
            device_ns.append(b[1] - a[1])
            fences.append(b[2] - a[2])
            fence_ns.append(b[3] - a[3])
        result["library"] = {
            "step_ms": [x / 1e6 for x in lib_ns], "step_calls": calls,
            "step_driver_calls": [b[0] - a[0] for a, b in zip(lib_device, lib_device[1:])],
            "step_driver_ms": [x / 1e6 for x in device_ns], "step_fence_waits": fences, "step_fence_ms": [x / 1e6 for x in fence_ns],
            "latencies_capped": any(len(v) >= lat_cap for v in lat.values()),
            # each call's time inside the library over the measured steps (lock, policy, device calls, fence waits)
            "malloc_ns": latency_probe.summary(lat["malloc"][lib_counts[warmup][0]:]),
            "free_ns": latency_probe.summary(lat["free"][lib_counts[warmup][1]:]),
        }
    # a pluggable allocator has no torch.cuda.memory_stats(): the library gives them under PyTorch's names
    s = lakebed_torch.memory_stats() if lib is not None else torch.cuda.memory_stats()
    result.update(peak_allocated=s["allocated_bytes.all.peak"], peak_reserved=s["reserved_bytes.all.peak"])
    # after the peaks and the library's latencies were read: the probe's own blocks touch neither
    result.update(latency_probe.python_latency(torch, SEED))
    path = os.path.join(outdir, "runs", f"{workload_spec.replace('*', 'x')}.{arm}.r{round_index}.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)
    measured = result["step_wall_ms"][warmup:]
    return {"median_wall_ms": statistics.median(measured), "startup_s": round(t_measured - t_start, 2), "s": round(t_end - t_start, 2)}


def child_main(spec, log_path):
    """In a forked child (or a --one process): output to the log, run, exit with 0 or 1."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    try:
        print(json.dumps(run_one(**spec)), flush=True)
        return 0
    except BaseException:  # noqa: BLE001 - the log says what failed; the parent goes on with the next run
        traceback.print_exc()
        sys.stdout.flush()
        return 1


def start_run(spec, log_path, spawn):
    """Starts one run: forked from this process (imports done), or a fresh `steptime.py --one` process."""
    if spawn:
        return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--one", json.dumps(spec), log_path],
                                stdin=subprocess.DEVNULL).pid
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = child_main(spec, log_path)
        finally:
            os._exit(code)
    return pid


def wait_run(pid, timeout_s):
    """Exit status of the run (124 where it ran past timeout_s and was killed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return 124
        time.sleep(0.05)


def last_line(path):
    try:
        with open(path) as f:
            lines = f.read().strip().splitlines()
        return lines[-1][:300] if lines else ""
    except OSError:
        return ""


def main(argv):
    t0 = time.monotonic()
    args = parse_args(argv)
    workloads_list = [w for w in args.workloads.split(",") if w]
    arms = [a for a in args.arms.split(",") if a]
    os.makedirs(os.path.join(args.outdir, "runs"), exist_ok=True)
    runs_txt = open(os.path.join(args.outdir, "runs.txt"), "a", buffering=1)
    spawn = os.environ.get("STEPTIME_SPAWN") == "1"

    def note(line):
        runs_txt.write(line + "\n")
        print(line, flush=True)

    # The imports every run needs, once, with CUDA untouched (a child forked after CUDA started cannot use it).
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # torch.cuda.is_available() without cuInit
    imports = {}
    if not spawn:
        import torch  # noqa: F401

        imports["torch"] = torch.__version__
        try:
            import transformers
            from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM  # noqa: F401

            imports["transformers"] = transformers.__version__
        except ImportError as e:
            imports["transformers"] = repr(e)
        try:
            import peft
            from peft import LoraConfig, get_peft_model  # noqa: F401

            imports["peft"] = peft.__version__
        except ImportError:
            imports["peft"] = None
        import lakebed_torch  # noqa: F401 - the module only; the library is opened in each child
        import workloads  # noqa: F401

        if torch.cuda.is_initialized():
            note("CUDA was initialized by the imports: every run is spawned instead of forked")
            spawn = True
    note(f"imports {round(time.monotonic() - t0, 1)} s {json.dumps(imports)}")
    plan = {"workloads": workloads_list, "arms": arms, "warmup_cycles": args.warmup_cycles, "cycles": args.cycles, "pin": args.pin,
            "shapes": SHAPES, "budget_s": args.budget_s, "spawn": spawn, "imports": imports, "library_conf": LIBRARY_CONF,
            "lib": os.environ.get("LAKEBED_TORCH_LIB"), "rounds_run": 0, "runs": []}

    def write_plan():
        with open(os.path.join(args.outdir, "plan.json"), "w") as f:
            json.dump(plan, f, indent=1)

    write_plan()
    took_s = {w: [] for w in workloads_list}  # each workload's runs' seconds so far

    def expected_s(w):
        """A run's seconds, as this workload's runs took (the median: the first, cold one is slower)."""
        t = took_s[w]
        return statistics.median(t) if len(t) >= 2 else (t[0] if t else 0.0)

    for r in range(args.rounds):
        # a round is every arm of every workload; it starts only where the last one's time fits
        round_estimate = sum(expected_s(w) for w in workloads_list) * len(arms) * 1.1
        if r > 0 and time.monotonic() - t0 + round_estimate > args.budget_s:
            note(f"round {r} not started: {round(time.monotonic() - t0)} s + about {round(round_estimate)} s > budget {args.budget_s} s")
            break
        for w in workloads_list:
            order = arms[r % len(arms):] + arms[:r % len(arms)]  # rotated: each arm at every position in turn
            for position, arm in enumerate(order):
                elapsed = time.monotonic() - t0
                if elapsed + expected_s(w) * 1.3 > args.budget_s:
                    note(f"{w} {arm} r{r} skipped ({round(elapsed)} s, past the budget)")
                    continue
                spec = {"workload_spec": w, "arm": arm, "round_index": r, "position": position, "outdir": args.outdir,
                        "warmup_cycles": args.warmup_cycles, "cycles": args.cycles, "pin": args.pin}
                log = os.path.join(args.outdir, "runs", f"{w.replace('*', 'x')}.{arm}.r{r}.log")
                started = time.monotonic()
                limit = min(args.run_timeout, max(10.0, args.budget_s + 30 - elapsed))
                if not plan["runs"] and not spawn:
                    limit = min(limit, 60.0)  # a forked child that hangs (CUDA after fork) costs a minute at most
                rc = wait_run(start_run(spec, log, spawn), limit)
                if rc != 0 and not spawn and not plan["runs"]:
                    # the very first forked run failed: fork may be what fails (CUDA in the parent); spawn from here on
                    note(f"{w} {arm} r{r} rc={rc} forked: spawning every run from here on; {last_line(log)}")
                    os.replace(log, log + ".forked")
                    spawn = plan["spawn"] = True
                    rc = wait_run(start_run(spec, log, spawn), args.run_timeout)
                took = time.monotonic() - started
                took_s[w].append(took)
                plan["runs"].append({"workload": w, "arm": arm, "round": r, "position": position, "rc": rc, "s": round(took, 2)})
                note(f"{w} {arm} r{r} rc={rc} {took:.1f} s {last_line(log)}")
        plan["rounds_run"] = r + 1
        write_plan()
    plan["seconds"] = round(time.monotonic() - t0, 1)
    write_plan()
    note(f"done: {plan['rounds_run']} rounds, {len(plan['runs'])} runs, {plan['seconds']} s")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--one":
        sys.exit(child_main(json.loads(sys.argv[2]), sys.argv[3]))
    main(sys.argv[1:])
