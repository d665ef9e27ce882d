#!/usr/bin/env bash
# Prepares the host tier's GPU check and bandwidth benchmark for the device machine (a GPU and
# CUDA, no Node toolchain), under the git-ignored .device/host-tier/:
#   lakebed_native.node       the addon as built here (the check loads it by LAKEBED_NATIVE_ADDON)
#   host-tier-check.mjs       bench/host-tier-check.mjs bundled with the packages, and core-sim.wasm
#   host_tier_bandwidth       bench/host_tier_bandwidth.cc (dlopens libcuda; no toolkit needed)
# Run from the repository root after building native-cuda and core-sim; then, in one device run
# with carry [".device"]: bash packages/native-cuda/bench/host-tier-run.sh
set -euo pipefail
pkg=packages/native-cuda
out=.device/host-tier
test -f "$pkg/build/Release/lakebed_native.node" || { echo "build native-cuda first" >&2; exit 1; }
test -f packages/core-sim/dist/core-sim.wasm || { echo "build core-sim first" >&2; exit 1; }
[ -s .device/node.xz ] || { mkdir -p .git/info && bash ../shared/tools/device-node.sh >/dev/null; }
mkdir -p "$out"
cp "$pkg/build/Release/lakebed_native.node" "$out/lakebed_native.node"
node_modules/.bin/esbuild "$pkg/bench/host-tier-check.mjs" --bundle --platform=node --format=esm \
  --target=node20 --outfile="$out/host-tier-check.mjs" --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
cp packages/core-sim/dist/core-sim.wasm "$out/"
# -static-libstdc++: the device image's C++ runtime may differ from this machine's.
g++ -O2 -std=c++17 -D_GNU_SOURCE -static-libstdc++ -I"$pkg/src/native" \
  "$pkg/bench/host_tier_bandwidth.cc" "$pkg/src/native/cuda_loader.cc" \
  "$pkg/src/native/cuda_backend.cc" "$pkg/src/native/driver_core.cc" -ldl -o "$out/host_tier_bandwidth"
du -sh "$out"
