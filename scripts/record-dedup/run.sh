#!/usr/bin/env bash
# Records the dedup runs (record.py: the 1.1B Llama) on a GPU machine with PyTorch and transformers
# (peft optional: a plain LoRA adapter is used without it), one process after another, into
# $OUT/dedup.tar.gz: N inference processes serving the one checkpoint (default 8, set N) and two
# LoRA fine-tunes of its base. device-run.sh is the one-call version that recorded
# test/fixtures/dedup (four processes at once) and runs the live check after. Then, on any
# machine: lakebed colocate on a scenario whose tenants name these traces (NAME.fingerprints.json
# is found beside each trace), as test/fixtures/scenarios/eight-llama1b.json does.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-/tmp/lakebed-dedup}"
n="${N:-8}"
work="$(mktemp -d)"
mkdir -p "$out"
runs=()
for ((k = 0; k < n; k++)); do runs+=("infer_$k"); done
runs+=(lora_a lora_b)
for name in "${runs[@]}"; do
  PYTHONUNBUFFERED=1 timeout 300 python3 "$here/record.py" "$name" "$work" >"$work/$name.log" 2>&1 || echo "$name: failed with status $?"
  tail -n 2 "$work/$name.log"
done
tar -czf "$out/dedup.tar.gz" -C "$work" .
ls -la "$work"
