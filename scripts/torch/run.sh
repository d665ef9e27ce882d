#!/usr/bin/env bash
# The GPU check of issue 15, in one call of the device tool (no compiler there: the library comes
# built, in .device/torch/). Every run is its own process, since PyTorch's allocator can only be
# swapped before the first CUDA allocation; the runs go one after another in a fixed order on the
# same machine, PyTorch's own allocator before and after the four policies, so that the spread
# between two processes of the same allocator is measured beside the differences between allocators.
# Usage: scripts/torch/run.sh OUTDIR [STEPS [BUDGET_S]]: runs that would start after BUDGET_S
# seconds are skipped (and listed as such), so that what ran comes back within the device call.
set -uo pipefail
out=${1:?OUTDIR}
steps=${2:-50}
budget=${3:-440}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/train-runs.sh"
mkdir -p "$out"
require_library_opens
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader; nproc; python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)'; } > "$out/machine.txt" 2>&1
# label allocator conf ("default": lakebed_torch's DEFAULT_CONF; "-": none)
# (the other lakebed page sizes last: they are what the time budget drops first)
RUNS=("native native -" "caching caching -" "expandable expandable -" "vms vms -" "lakebed lakebed default"
      "native_again native -" "lakebed_4mib lakebed lakebed_large_page_mb:4" "lakebed_20mib lakebed lakebed_large_page_mb:20")
for w in gpt2_ckpt llama_lora; do
  for r in "${RUNS[@]}"; do
    read -r label a conf <<< "$r"
    [ "$conf" = - ] && conf=""
    # the first process on a fresh machine imports torch cold (tens of seconds): a generous limit
    within_budget "$w $label" "$out/$w.$label.log" timeout 150 python3 "$here/train.py" "$w" "$a" "$steps" "$out" "$conf" "$label"
  done
done
timeout 90 python3 "$here/probe.py" > "$out/probe.json" 2> "$out/probe.log"
echo "probe rc=$?" >> "$out/runs.txt"
