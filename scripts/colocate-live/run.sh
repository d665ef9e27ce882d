#!/usr/bin/env bash
# On the device machine (prepare.sh made .device/colocate-live/): unpacks Node and runs the live
# half's check on the GPU; leaves colocate-live.json, gpu.txt and log.txt under $OUT.
set -uo pipefail
out=${OUT:-colocate-live-out}
mkdir -p "$out"
xz -dc .device/node.xz > .device/node && chmod +x .device/node
export PATH=$PWD/.device:$PATH
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv | tee "$out/gpu.txt"
LAKEBED_NATIVE_ADDON=$PWD/.device/colocate-live/lakebed_native.node \
  node .device/colocate-live/gpu-check.mjs --backend cuda --plan .device/colocate-live/six-infer.plan.json \
  --acquire-bytes $((1 << 30)) --iterations "${ITERATIONS:-30}" --out "$out" 2>&1 | tee "$out/log.txt"
exit "${PIPESTATUS[0]}"
