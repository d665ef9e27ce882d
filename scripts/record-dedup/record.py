"""Records the dedup fixtures on a GPU: processes that serve the same checkpoint.

Each run is one process (as real tenants are), recorded from a fresh allocator with
python/lakebed_record.py, allocator history on before the model is built (a complete trace):
NAME.pickle.gz (the snapshot), NAME.access.json.gz (the operators' accesses), NAME.fingerprints.json
(BLAKE2b of every 2 MiB window of the parameters and buffers, taken right after the model is
loaded) and NAME.stats.json (torch.cuda.memory_stats() when the snapshot was taken, as in
../record-access).

The model: a Llama of about 1.1 billion parameters (TinyLlama's shape: 2048 x 22 layers, GQA 32/4
heads, intermediate 5632, vocabulary 32000, untied head), bf16, built from its configuration with
seed 0 in every process, so every process holds the same bytes, as processes that load one
checkpoint do (the GPU machine has no network: no checkpoint is loaded).

  infer_K     greedy decoding of 32 tokens after a prompt, three requests of batch 1-2 (prompts
              96-384 tokens), transformers' DynamicCache growing a token at a time
  lora_a/_b   two LoRA fine-tunes of the one base: peft LoRA r=16 on q/k/v/o, the adapters seeded
              apart (101, 202), gradient checkpointing, AdamW on the adapters, 2 steps

Usage: python3 record.py NAME OUTDIR     (run.sh runs them, one process each)
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "record-access"))

BASE_SEED = 0
MAX_ENTRIES = 1_000_000
NEW_TOKENS = 32
PROMPTS = [(1, 256), (2, 96), (1, 384)]  # (batch, prompt tokens) of each request
LORA_STEPS = [(2, 512), (1, 768)]  # (batch, sequence) of each training step
DESCRIPTION = "Llama-style 2048 x 22 layers (GQA 32/4 heads, intermediate 5632, about 1.1 billion parameters), bf16, built with seed 0"


def llama_1b_config():
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                       num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, tie_word_embeddings=False)


def main():
    import torch
    import lakebed_record
    import workloads

    workloads.torch = torch  # workloads.py binds torch in its main()
    name, outdir = sys.argv[1], sys.argv[2]
    if not (name.startswith("infer_") or name in ("lora_a", "lora_b")):
        raise SystemExit(f"unknown run {name} (infer_K, lora_a, lora_b)")
    os.makedirs(outdir, exist_ok=True)
    prefix = os.path.join(outdir, name)
    t0 = time.time()
    torch.cuda.memory._record_memory_history(enabled="all", context=None, max_entries=MAX_ENTRIES)
    from transformers import LlamaForCausalLM

    torch.manual_seed(BASE_SEED)
    model = LlamaForCausalLM(llama_1b_config()).to(device="cuda", dtype=torch.bfloat16)
    parameters = sum(p.numel() for p in model.parameters())
    if name.startswith("infer_"):
        model.eval()
        lakebed_record.fingerprint(model, prefix, label="after load")
        workload = f"{DESCRIPTION}; greedy decoding of {NEW_TOKENS} tokens after each of {len(PROMPTS)} prompts (batch, tokens) {PROMPTS}, transformers' DynamicCache growing a token at a time"
        steps = len(PROMPTS)
        with lakebed_record.record(prefix, start_history=False) as recording:
            for b, t in PROMPTS:
                ids = torch.randint(0, 32000, (b, t), device="cuda")
                with torch.inference_mode():
                    out = model(input_ids=ids, use_cache=True)
                    cache = out.past_key_values
                    token = out.logits[:, -1:].argmax(-1)
                    del out
                    for _ in range(NEW_TOKENS):
                        out = model(input_ids=token, past_key_values=cache, use_cache=True)
                        cache = out.past_key_values
                        token = out.logits[:, -1:].argmax(-1)
                        del out
                    del cache, token
    else:
        torch.manual_seed(101 if name == "lora_a" else 202)  # the adapters differ, the base does not
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model, lora = workloads.add_lora(model)
        model.train()
        lakebed_record.fingerprint(model, prefix, label="after load")
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        workload = f"{DESCRIPTION}; LoRA r=16 on q/k/v/o through {lora} (adapters seeded {101 if name == 'lora_a' else 202}), gradient checkpointing, AdamW, {len(LORA_STEPS)} steps (batch, sequence) {LORA_STEPS}"
        steps = len(LORA_STEPS)
        with lakebed_record.record(prefix, start_history=False) as recording:
            for b, t in LORA_STEPS:
                ids = torch.randint(0, 32000, (b, t), device="cuda")
                model(input_ids=ids, labels=ids).loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
    stats = torch.cuda.memory_stats()
    torch.cuda.memory._record_memory_history(enabled=None)
    meta = workloads.write_recording_stats(prefix, recording, workload=workload, steps=steps, t0=t0, stats=stats,
                                           max_entries=MAX_ENTRIES, mid_run=False, error=None, parameters=parameters)
    print(f"{name}: {parameters} parameters, {recording.operators} operators, peak reserved {stats['reserved_bytes.all.peak']} B, "
          f"{meta['seconds']} s; {prefix}.pickle.gz, {prefix}.fingerprints.json")


if __name__ == "__main__":
    main()
