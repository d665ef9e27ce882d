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
source "$here/train-runs.sh"
mkdir -p "$out"
for k in $(seq 1 "$pairs"); do
  for a in native "$policy"; do
    within_budget "$workload $a.$k" "$out/$workload.$a.$k.log" \
      timeout 120 ${PIN_CPUS:+taskset -c "$PIN_CPUS"} python3 "$here/train.py" "$workload" "$a" "$steps" "$out" "" "$a.$k"
  done
done
