#!/usr/bin/env bash
# Records the runs of workloads.py named as arguments (all of them without any), one process each,
# into $OUT/access.tar.gz. Run it on a GPU machine with PyTorch and transformers (peft optional).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-/tmp/lakebed-access}"
work="$(mktemp -d)"
mkdir -p "$out"
python3 "$here/workloads.py" --list | while IFS=$'\t' read -r name conf; do
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
  PYTORCH_CUDA_ALLOC_CONF="$conf" PYTHONUNBUFFERED=1 timeout 240 python3 "$here/workloads.py" "$name" "$work" >"$work/$name.log" 2>&1 \
    || echo "$name: failed with status $?"
  tail -n 3 "$work/$name.log"
done
tar -czf "$out/access.tar.gz" -C "$work" .
ls -la "$work"
