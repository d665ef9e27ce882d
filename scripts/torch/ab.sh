#!/usr/bin/env bash
# Step time between processes: PyTorch's own allocator and one policy through the library,
# alternated PAIRS times on the same machine (A B A B ...), each its own process as in run.sh. What
# one process's median says is bounded by how far two processes of the same allocator differ; the
# alternation spreads any drift of the machine (clocks, neighbours) over both.
# Usage: scripts/torch/ab.sh OUTDIR WORKLOAD POLICY [PAIRS [STEPS [BUDGET_S]]]; pairs that would
# start after BUDGET_S seconds are skipped. PIN_CPUS=4-7 runs every process on those cores
# (taskset), to see whether the spread between processes is where the scheduler puts them.
set -uo pipefail
out=${1:?OUTDIR}
workload=${2:?WORKLOAD}
policy=${3:?POLICY}
pairs=${4:-4}
steps=${5:-30}
budget=${6:-150}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out"
export LAKEBED_TORCH_LIB=${LAKEBED_TORCH_LIB:-$root/.device/torch/liblakebed_torch.so}
export PYTHONPATH=$root/python${PYTHONPATH:+:$PYTHONPATH}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
for k in $(seq 1 "$pairs"); do
  for a in native "$policy"; do
    if [ "$SECONDS" -ge "$budget" ]; then
      echo "$workload $a.$k skipped (past ${budget} s)" | tee -a "$out/runs.txt"
      continue
    fi
    start=$SECONDS
    timeout 120 ${PIN_CPUS:+taskset -c "$PIN_CPUS"} python3 "$here/train.py" "$workload" "$a" "$steps" "$out" "" "$a.$k" > "$out/$workload.$a.$k.log" 2>&1
    echo "$workload $a.$k rc=$? $((SECONDS - start)) s" | tee -a "$out/runs.txt"
  done
done
