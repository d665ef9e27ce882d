"""Records the dedup fixtures on a GPU: processes that hold the same read-only weights.

Each run is one process (as real tenants are), recorded from a fresh allocator with
python/lakebed_record.py: NAME.pickle.gz (the snapshot), NAME.access.json.gz and NAME.fingerprints.json
(BLAKE2b of every 2 MiB window of the parameters and buffers, taken right after the model is loaded).

  infer_K     K = 0 .. N-1: the Llama-style model of ../record-access/workloads.py, built with the same
              seed (so with the same weights in every process), then 3 greedy generate() requests
  lora_a/_b   two LoRA fine-tunes of one base: the base built with the same seed, the adapters
              (r=16 on q/k/v/o) with different seeds, then 4 training steps each

Models have random weights (the GPU machine has no network); what dedup needs is that the weights
are the same bytes in each process, which the seed gives.

Usage: python3 record.py NAME OUTDIR     (run.sh runs them all, one process each)
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "record-access"))

BASE_SEED = 0


def main():
    import torch
    import lakebed_record
    import workloads

    workloads.torch = torch  # workloads.py binds torch in its main()
    name, outdir = sys.argv[1], sys.argv[2]
    prefix = os.path.join(outdir, name)
    torch.cuda.memory._record_memory_history(enabled="all", context=None, max_entries=1_000_000)
    from transformers import LlamaForCausalLM

    torch.manual_seed(BASE_SEED)
    model = LlamaForCausalLM(workloads.llama_config()).to(device="cuda", dtype=torch.bfloat16)
    if name.startswith("infer_"):
        model.eval()
        lakebed_record.fingerprint(model, prefix, label="after load")
        prompts = [(4, 128), (2, 256), (6, 96)]
        with lakebed_record.record(prefix, start_history=False):
            for b, t in prompts:
                ids = torch.randint(0, 32000, (b, t), device="cuda")
                with torch.inference_mode():
                    model.generate(ids, max_new_tokens=48, do_sample=False)
    elif name in ("lora_a", "lora_b"):
        torch.manual_seed(101 if name == "lora_a" else 202)  # the adapters differ, the base does not
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model, _ = workloads.add_lora(model)
        model.train()
        lakebed_record.fingerprint(model, prefix, label="after load")
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        with lakebed_record.record(prefix, start_history=False):
            for b, t in [(4, 512), (2, 1024), (4, 384), (3, 768)]:
                ids = torch.randint(0, 32000, (b, t), device="cuda")
                model(input_ids=ids, labels=ids).loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
    else:
        raise SystemExit(f"unknown run {name}")
    torch.cuda.memory._record_memory_history(enabled=None)
    print(f"{name}: {prefix}.pickle.gz, {prefix}.fingerprints.json")


if __name__ == "__main__":
    main()
