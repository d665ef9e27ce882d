#!/usr/bin/env bash
# On the device machine, one run (prepare with scripts/colocate-live/prepare.sh; carry .device):
#   1. records the dedup fixtures of the 1.1B Llama (record.py): infer_0 and infer_1 (two processes
#      serving the same checkpoint), lora_a and lora_b (two fine-tunes of the one base), all four
#      at once, one process each
#   2. puts them where the scenarios name them (test/fixtures/dedup/, in this copy of the tree)
#   (SKIP_RECORD=1: the recordings already in test/fixtures/dedup, steps 1 and 2 left out)
#   3. the live check on the GPU (gpu-check.mjs): test/fixtures/scenarios/eight-llama1b.json planned
#      there; its first 6 tenants as processes, each replaying its timeline through its policy beside
#      the shared parameter chunks, data verified across processes, device memory measured, a write
#      through a shared mapping refused; then N = 1..8 (not 6 again) while the sweep budget lasts
# Everything lands in $OUT/dedup-live.tar.gz (one file, rewritten after each step): the recordings
# under rec/, colocate-live.json, gpu.txt, log.txt.
set -uo pipefail
[ -x .device/node ] || { xz -dc .device/node.xz > .device/node && chmod +x .device/node; }
export PATH=$PWD/.device:$PATH
res=$(mktemp -d)/dedup-live
mkdir -p "$res/rec"
pack() { tar -czf "${OUT:-.}/dedup-live.tar.gz" -C "$(dirname "$res")" dedup-live; }
log() { echo "$*" | tee -a "$res/log.txt"; pack; }
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv | tee "$res/gpu.txt"
python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)' | tee -a "$res/gpu.txt"
if [ "${SKIP_RECORD:-0}" = 1 ]; then
  # the fixtures are already in the tree (an earlier run's, committed): the live check alone
  test -f test/fixtures/dedup/llama1b_infer.def.pickle.gz || { log "SKIP_RECORD=1 without test/fixtures/dedup"; exit 1; }
else
s=$SECONDS
for name in infer_0 infer_1 lora_a lora_b; do
  (PYTHONUNBUFFERED=1 timeout "${RECORD_TIMEOUT_S:-200}" python3 scripts/record-dedup/record.py "$name" "$res/rec" >"$res/rec/$name.log" 2>&1
   echo "record $name: exit $? at $((SECONDS - s)) s" | tee -a "$res/log.txt") &
done
wait
for name in infer_0 infer_1 lora_a lora_b; do tail -n 3 "$res/rec/$name.log"; done | tee -a "$res/log.txt"
log "recorded in $((SECONDS - s)) s"
d=test/fixtures/dedup
mkdir -p "$d"
put() { # run, fixture name
  for ext in pickle.gz access.json.gz stats.json fingerprints.json; do
    [ -f "$res/rec/$1.$ext" ] && cp "$res/rec/$1.$ext" "$d/$2.$ext"
  done
}
put infer_0 llama1b_infer.def
put lora_a llama1b_lora_a.def
put lora_b llama1b_lora_b.def
cp "$res/rec/infer_1.fingerprints.json" "$d/llama1b_infer_1.fingerprints.json" 2>/dev/null
cmp -s <(python3 -c 'import json,sys; print([s["chunks"] for s in json.load(open(sys.argv[1]))["storages"]])' "$res/rec/infer_0.fingerprints.json") \
       <(python3 -c 'import json,sys; print([s["chunks"] for s in json.load(open(sys.argv[1]))["storages"]])' "$res/rec/infer_1.fingerprints.json") \
  && log "infer_0 and infer_1: the same digests, window for window" || log "infer_0 and infer_1: digests DIFFER"
fi
s=$SECONDS
# the registry holds one descriptor a shared chunk (1,026 for the 1B model), past a soft limit of 1,024
ulimit -n "$(ulimit -Hn)"
LAKEBED_NATIVE_ADDON=$PWD/.device/colocate-live/lakebed_native.node timeout "${CHECK_TIMEOUT_S:-150}" \
  node .device/colocate-live/gpu-check.mjs --backend "${BACKEND:-cuda}" --scenario test/fixtures/scenarios/eight-llama1b.json \
  --tenants 6 --sweep "${SWEEP:-1,2,4,8,3,5,7}" --sweep-budget-s "${SWEEP_BUDGET_S:-90}" --no-handover --out "$res" 2>&1 | tee -a "$res/log.txt"
status=${PIPESTATUS[0]}
log "gpu-check: exit $status in $((SECONDS - s)) s"
exit "$status"
