#!/usr/bin/env bash
# On the device machine (prepare-host-tier.sh made .device/host-tier/): unpacks Node, runs the
# bandwidth benchmark (raw, raw on VMM, DriverCore) and the check through the addon and the Wasm,
# and leaves bandwidth.json, host-tier-addon.json, gpu.txt and log.txt under $OUT.
set -uo pipefail
out=${OUT:-host-tier-out}
mkdir -p "$out"
xz -dc .device/node.xz > .device/node && chmod +x .device/node
export PATH=$PWD/.device:$PATH
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,pcie.link.gen.current,pcie.link.width.current \
  --format=csv | tee "$out/gpu.txt"
rc=0
.device/host-tier/host_tier_bandwidth > "$out/bandwidth.json" 2> "$out/log.txt" || rc=$?
echo "host_tier_bandwidth: exit $rc" | tee -a "$out/log.txt"
LAKEBED_NATIVE_ADDON=$PWD/.device/host-tier/lakebed_native.node \
  node .device/host-tier/host-tier-check.mjs --driver cuda --out "$out" 2>&1 | tee -a "$out/log.txt"
check=${PIPESTATUS[0]}
echo "host-tier-check: exit $check" | tee -a "$out/log.txt"
[ "$rc" -eq 0 ] && [ "$check" -eq 0 ]
