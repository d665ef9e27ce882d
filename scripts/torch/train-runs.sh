# Sourced by run.sh, steptime.sh and ab.sh (after they set `here`, this folder): the environment every train.py
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

# require_library_opens: one small process opens the library on the GPU and allocates through it
# before any budget is spent on runs; exits 3 where it cannot (once, a library linked from stale
# objects failed every process of a whole device call with "device 0 does not exist (0 device(s))").
require_library_opens() {
  python3 -c "import lakebed_torch, torch; lakebed_torch.enable(policy='lakebed'); x = torch.ones(1 << 20, device='cuda'); assert float(x.sum()) == 1 << 20; print('the library opens:', lakebed_torch.memory_stats()['reserved_bytes.all.current'], 'bytes reserved')" \
    || { echo "liblakebed_torch.so ($LAKEBED_TORCH_LIB) does not open on this GPU: no runs" >&2; exit 3; }
}
