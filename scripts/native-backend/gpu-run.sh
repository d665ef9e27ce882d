#!/usr/bin/env bash
# On the device machine (prepare-device.sh made .device/): unpacks Node, runs the native backend's
# check and benchmark on the GPU, and leaves live-bench.{json,md} and the log under $OUT.
set -uo pipefail
out=${OUT:-live-bench-out}
mkdir -p "$out"
xz -dc .device/node.xz > .device/node && chmod +x .device/node
export PATH=$PWD/.device:$PATH
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv | tee "$out/gpu.txt"
node .device/live/gpu-bench.mjs --traces .device/traces --raw-replay .device/native-cuda/raw_replay \
  --out "$out" "$@" 2>&1 | tee "$out/log.txt"
rm -f "$out"/*.calls.txt
exit "${PIPESTATUS[0]}"
