#!/usr/bin/env bash
# The GPU check of issue 15, in one call of the device tool (no compiler there: the library comes
# built, in .device/torch/). Every run is its own process, since PyTorch's allocator can only be
# swapped before the first CUDA allocation. Usage: scripts/torch/run.sh OUTDIR [STEPS]
set -uo pipefail
out=${1:?OUTDIR}
steps=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out"
export LAKEBED_TORCH_LIB=${LAKEBED_TORCH_LIB:-$root/.device/torch/liblakebed_torch.so}
export PYTHONPATH=$root/python${PYTHONPATH:+:$PYTHONPATH}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)'; } > "$out/machine.txt" 2>&1
for w in gpt2_ckpt llama_lora; do
  for a in native caching expandable vms lakebed; do
    start=$SECONDS
    timeout 150 python3 "$here/train.py" "$w" "$a" "$steps" "$out" > "$out/$w.$a.log" 2>&1
    echo "$w $a rc=$? $((SECONDS - start)) s" | tee -a "$out/runs.txt"
  done
done
timeout 120 python3 "$here/probe.py" > "$out/probe.json" 2> "$out/probe.log"
echo "probe rc=$?" >> "$out/runs.txt"
