"""Records allocator traces with operator accesses (python/lakebed_record.py) on a real GPU.

One workload per process, each from a fresh allocator, so the trace is complete. Each run writes
NAME.pickle.gz (the snapshot), NAME.access.json.gz (what each operator touched) and NAME.stats.json
(torch.cuda.memory_stats() when the snapshot was taken, as in ../record-traces, plus the recording
overhead). Models are built from transformers/peft configurations with random weights (the GPU
machine has no network), small enough that a trace of a few steps ships as a test fixture.

Overhead: after the recorded steps, the same step runs again, interleaved, `TIMED` times each way:
plain, with the allocator history on (what users already record), and with history and the
recorder's dispatch mode on; the medians go into NAME.stats.json.

Usage: python3 workloads.py NAME OUTDIR   (one run; run.sh runs them all)
       python3 workloads.py --list        (NAME and PYTORCH_CUDA_ALLOC_CONF of each run, tab-separated)
"""
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

TIMED = 5
# name -> (PYTORCH_CUDA_ALLOC_CONF, workload, recorded steps)
RUNS = {
    "gpt2_train.def": ("", "gpt2", 4),
    "gpt2_ckpt.def": ("", "gpt2_ckpt", 4),
    "llama_lora.exp": ("expandable_segments:True", "llama_lora", 4),
    "llama_infer.def": ("", "llama_infer", 3),
    "mlp_compiled.def": ("", "mlp_compiled", 4),
    # recorded as most users record: history turned on after the model was built and had run a step,
    # so the trace starts mid-run (parameters, optimizer state and cached segments already there)
    "gpt2_midrun.def": ("", "gpt2", 3),
}
MID_RUN = {"gpt2_midrun.def"}


def gpt2(checkpointing):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=6, n_embd=768, n_head=12, n_positions=1024, vocab_size=50257)
    model = GPT2LMHeadModel(config).cuda()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    shapes = [(8, 512), (8, 384), (6, 512), (8, 448)]

    def step(i):
        b, t = shapes[i % len(shapes)]
        ids = torch.randint(0, config.vocab_size, (b, t), device="cuda")
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, "GPT-2 6 x 768, AdamW, bf16 autocast, batch 6-8, seq 384-512" + (", activation checkpointing" if checkpointing else "")


def llama_config():
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8, num_attention_heads=16,
                       num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048)


def add_lora(model, rank=16):
    """peft's LoRA on the attention projections; a plain low-rank adapter where peft is missing."""
    try:
        from peft import LoraConfig, get_peft_model

        return get_peft_model(model, LoraConfig(r=rank, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])), "peft"
    except ImportError:
        nn = torch.nn

        class LoRALinear(nn.Module):
            def __init__(self, base):
                super().__init__()
                self.base = base
                self.a = nn.Linear(base.in_features, rank, bias=False, dtype=base.weight.dtype)
                self.b = nn.Linear(rank, base.out_features, bias=False, dtype=base.weight.dtype)
                nn.init.zeros_(self.b.weight)

            def forward(self, x):
                return self.base(x) + self.b(self.a(x)) * 2.0

        for p in model.parameters():
            p.requires_grad_(False)
        for layer in model.model.layers:
            for name in ["q_proj", "k_proj", "v_proj", "o_proj"]:
                setattr(layer.self_attn, name, LoRALinear(getattr(layer.self_attn, name)))
        return model, "a plain LoRA adapter (peft not installed)"


def llama_lora():
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM(llama_config()).to(device="cuda", dtype=torch.bfloat16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model, lora = add_lora(model)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    shapes = [(4, 512), (2, 1024), (4, 384), (3, 768)]

    def step(i):
        b, t = shapes[i % len(shapes)]
        ids = torch.randint(0, 32000, (b, t), device="cuda")
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, f"Llama-style 1024 x 8 layers (GQA 16/4 heads), bf16 weights, LoRA r=16 on q/k/v/o through {lora}, gradient checkpointing, AdamW, batch 2-4, seq 384-1024"


def llama_infer():
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM(llama_config()).to(device="cuda", dtype=torch.bfloat16).eval()
    prompts = [(4, 128), (2, 256), (6, 96)]

    def step(i):
        b, t = prompts[i % len(prompts)]
        ids = torch.randint(0, 32000, (b, t), device="cuda")
        with torch.inference_mode():
            out = model(input_ids=ids, use_cache=True)
            cache = out.past_key_values  # grows by one token per layer each step (torch.cat)
            token = out.logits[:, -1:].argmax(-1)
            del out
            for _ in range(48):
                out = model(input_ids=token, past_key_values=cache, use_cache=True)
                cache = out.past_key_values
                token = out.logits[:, -1:].argmax(-1)
                del out
            del cache, token

    return step, "Llama-style 1024 x 8 layers, bf16, greedy decoding of 48 tokens after a prompt (batch 2-6, prompt 96-256), KV cache growing a token at a time (transformers' DynamicCache)"


def mlp_compiled():
    nn = torch.nn
    model = nn.Sequential(nn.Linear(2048, 8192), nn.GELU(), nn.Linear(8192, 2048), nn.LayerNorm(2048)).cuda()
    compiled = torch.compile(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(i):
        x = torch.randn(4096, 2048, device="cuda")
        loss = compiled(x).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step, "MLP 2048-8192-2048 + LayerNorm under torch.compile (Triton kernels of the compiled graph), AdamW, batch 4096"


WORKLOADS = {
    "gpt2": lambda: gpt2(False),
    "gpt2_ckpt": lambda: gpt2(True),
    "llama_lora": llama_lora,
    "llama_infer": llama_infer,
    "mlp_compiled": mlp_compiled,
}


def write_recording_stats(prefix, recording, *, workload, steps, t0, stats, max_entries, mid_run, error, **extra):
    """Writes PREFIX.stats.json for a lakebed_record recording and returns what it wrote: the
    workload, the allocator's configuration and memory_stats(), the device, the recording's size and
    its error (None where the steps ran), then `extra` (what only one kind of run records)."""
    meta = {
        "workload": workload,
        "alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "") or "default",
        "recorded_steps": steps,
        "operators": recording.operators,
        "seconds": round(time.time() - t0, 2),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "stats": stats,
        "device_total_memory": torch.cuda.get_device_properties(0).total_memory,
        "memory_fraction": None,
        "capacity_bytes": None,
        "max_entries": max_entries,
        "mid_run": mid_run,
        "error": error,
        **extra,
        "access_bytes": os.path.getsize(recording.access_path),
        "snapshot_bytes": os.path.getsize(recording.snapshot_path),
    }
    with open(f"{prefix}.stats.json", "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def timed(step, i):
    torch.cuda.synchronize()
    t = time.perf_counter()
    step(i)
    torch.cuda.synchronize()
    return time.perf_counter() - t


def main():
    if sys.argv[1] == "--list":
        for name, run in RUNS.items():
            print(f"{name}\t{run[0]}")
        return
    global torch
    import torch
    import lakebed_record

    name, outdir = sys.argv[1], sys.argv[2]
    conf, workload, steps = RUNS[name]
    assert os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "") == conf, "run.sh sets PYTORCH_CUDA_ALLOC_CONF"
    torch.manual_seed(0)
    t0 = time.time()
    prefix = os.path.join(outdir, name)
    mid_run = name in MID_RUN
    if not mid_run:
        # history from the start, so the model's parameters are in the trace (a complete trace)
        torch.cuda.memory._record_memory_history(enabled="all", context=None, max_entries=1_000_000)
    step, description = WORKLOADS[workload]()
    if workload == "mlp_compiled" or mid_run:
        step(0)  # compile outside the dispatch mode (the compiled graph then runs under it); or warm up
    if mid_run:
        description += "; recording started after the model was built and had run a step (the trace starts mid-run)"
    record_error = None
    try:
        with lakebed_record.record(prefix, start_history=mid_run) as recording:
            for i in range(steps):
                step(i)
    except Exception as e:  # noqa: BLE001 - the snapshot and the record of the steps before are written
        record_error = repr(e)
    stats = torch.cuda.memory_stats()
    if not mid_run:
        torch.cuda.memory._record_memory_history(enabled=None)

    times = {"plain": [], "history": [], "recorder": []}
    error = None
    try:
        for i in range(TIMED):
            for way in times:
                if way != "plain":
                    torch.cuda.memory._record_memory_history(enabled="all", context=None, max_entries=1_000_000)
                if way == "recorder":
                    with lakebed_record.AccessMode():
                        times[way].append(timed(step, i))
                else:
                    times[way].append(timed(step, i))
                if way != "plain":
                    torch.cuda.memory._record_memory_history(enabled=None)
    except Exception as e:  # noqa: BLE001 - the recording is kept either way
        error = repr(e)
    median = {way: statistics.median(ts) if ts else float("nan") for way, ts in times.items()}
    meta = write_recording_stats(
        prefix, recording, workload=description, steps=steps, t0=t0, stats=stats, max_entries=1_000_000,
        mid_run=mid_run, error=record_error,
        timing_error=error,
        overhead={
            "timed_steps": TIMED,
            "median_step_seconds": {way: round(s, 5) for way, s in median.items()},
            "recorder_over_plain": round(median["recorder"] / median["plain"], 3),
            "recorder_over_history": round(median["recorder"] / median["history"], 3),
            "step_seconds": {way: [round(s, 5) for s in ts] for way, ts in times.items()},
        },
    )
    o = meta["overhead"]["median_step_seconds"]
    print(f"{name}: {recording.operators} operators, step {o['plain']:.4f} s plain, {o['history']:.4f} s history, "
          f"{o['recorder']:.4f} s recorder ({meta['overhead']['recorder_over_plain']}x), "
          f"snapshot {meta['snapshot_bytes']} B, access {meta['access_bytes']} B")


if __name__ == "__main__":
    main()
