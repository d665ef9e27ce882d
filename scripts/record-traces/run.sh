#!/usr/bin/env bash
# Records the runs of record.py named as arguments (all of them without any), one process each, into
# $OUT/recorded.tar.gz. Run it on a GPU machine with PyTorch (through the device tool, $OUT is the
# folder that comes back).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-/tmp/lakebed-recorded}"
work="$(mktemp -d)"
mkdir -p "$out"
python3 "$here/record.py" --list | while IFS=$'\t' read -r name conf; do
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
  PYTORCH_CUDA_ALLOC_CONF="$conf" timeout 150 python3 "$here/record.py" "$name" "$work" || echo "$name: failed with status $?"
done
tar -czf "$out/recorded.tar.gz" -C "$work" .
ls -la "$work"
