# Sourced by run.sh and ab.sh (after they set `here`, this folder): the environment every train.py
# process runs in, and within_budget, which runs one such process unless the time budget is spent.
root=$(cd "$here/../.." && pwd)
export LAKEBED_TORCH_LIB=${LAKEBED_TORCH_LIB:-$root/.device/torch/liblakebed_torch.so}
export PYTHONPATH=$root/python${PYTHONPATH:+:$PYTHONPATH}
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1

# within_budget NAME LOG COMMAND...: runs COMMAND, its output to LOG, and lists NAME with its exit
# status and seconds in $out/runs.txt; where the script has run $budget seconds already, NAME is
# listed as skipped instead (so what ran comes back within the device call).
within_budget() {
  local name=$1 log=$2 start
  shift 2
  if [ "$SECONDS" -ge "$budget" ]; then
    echo "$name skipped (past ${budget} s)" | tee -a "$out/runs.txt"
    return
  fi
  start=$SECONDS
  "$@" > "$log" 2>&1
  echo "$name rc=$? $((SECONDS - start)) s" | tee -a "$out/runs.txt"
}
