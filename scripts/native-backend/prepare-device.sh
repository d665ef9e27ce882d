#!/usr/bin/env bash
# Prepares the native backend's GPU check and benchmark (gpu-bench.ts) for the device machine,
# which has a GPU and CUDA but no npm: one bundled script with the packages in it, the addon, the
# policies' Wasm, the raw-driver programs and the shared traces, all under the git-ignored .device/.
# Run from the repository root after `npx turbo run build`. Then, in one device run with carry
# [".device"]:  bash scripts/native-backend/gpu-run.sh
set -euo pipefail
bash packages/native-cuda/bench/prepare-device.sh >/dev/null   # node.xz, the addon, raw_bench
mkdir -p .device/live .device/traces
node_modules/.bin/esbuild scripts/native-backend/gpu-bench.ts --bundle --platform=node --format=esm \
  --target=node20 --outfile=.device/live/gpu-bench.mjs --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
# the Wasm modules the packages load from beside the bundle (traces falls back to JS without its own)
cp packages/core-sim/dist/core-sim.wasm packages/traces/dist/*.wasm .device/live/
g++ -O2 -std=c++17 -D_GNU_SOURCE -static-libstdc++ -Ipackages/native-cuda/src/native \
  packages/native-cuda/bench/raw_replay.cc packages/native-cuda/src/native/cuda_loader.cc -ldl \
  -o .device/native-cuda/raw_replay
cp ../shared/traces/*.pickle.gz ../shared/traces/*.stats.json .device/traces/
du -sh .device
