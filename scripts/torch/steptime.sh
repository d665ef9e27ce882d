#!/usr/bin/env bash
# Step time of issue 15 in one call of the device tool: PyTorch's own allocator and each policy
# through the library (packages/torch's liblakebed_torch.so, in .device/torch/ or LAKEBED_TORCH_LIB),
# GPT-2 training and Llama LoRA, many short processes in rotating rounds (steptime.py says how and
# why). Then, here: node scripts/torch/steptime-report.mjs OUTDIR (the ratio to native, its interval).
# Usage: scripts/torch/steptime.sh OUTDIR [BUDGET_S [steptime.py options...]]
#   BUDGET_S (default 380): no round (or process) starts that would end after it, as the workload's
#   processes took so far (their median). WORKLOADS / ARMS / CYCLES override steptime.py's defaults
#   (e.g. WORKLOADS='gpt2_ckpt,gpt2_ckpt*4' adds GPT-2 with four times the batch, a GPU-bound variant);
#   PIN=2-5 confines every process, threads included, to those CPUs, the same for every arm (tried on
#   the host-bound Llama LoRA, whose processes of one allocator were 20-29% apart unpinned: pinned to
#   eight CPUs they were still 19.8% apart, run h200-2026-12-02-h).
set -uo pipefail
out=${1:?OUTDIR}
budget=${2:-380}
shift $(( $# < 2 ? $# : 2 ))
here=$(cd "$(dirname "$0")" && pwd)
source "$here/train-runs.sh"
mkdir -p "$out"
require_library_opens
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm,power.limit,persistence_mode,compute_mode --format=csv; nproc; uname -r;
  grep -m1 'model name' /proc/cpuinfo; echo "LAKEBED_TORCH_LIB=$LAKEBED_TORCH_LIB"; ls -l "$LAKEBED_TORCH_LIB"; } > "$out/machine.txt" 2>&1
# the GPU's clocks, power and load every 200 ms beside the runs (the report lines them up with each process)
TZ=UTC nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,utilization.gpu,pstate \
  --format=csv,noheader,nounits -lms 200 > "$out/gpu.csv" 2> "$out/gpu.err" &
smi=$!
opts=()
[ -n "${WORKLOADS:-}" ] && opts+=(--workloads "$WORKLOADS")
[ -n "${ARMS:-}" ] && opts+=(--arms "$ARMS")
[ -n "${CYCLES:-}" ] && opts+=(--cycles "$CYCLES")
[ -n "${PIN:-}" ] && opts+=(--pin "$PIN")
python3 "$here/steptime.py" "$out" "$(( budget - SECONDS - 5 ))" ${opts[@]+"${opts[@]}"} "$@" > "$out/steptime.log" 2>&1
rc=$?
kill "$smi" 2> /dev/null
wait "$smi" 2> /dev/null
echo "steptime.py rc=$rc, $SECONDS s" | tee -a "$out/runs.txt"
tail -n 3 "$out/steptime.log"
exit $rc
