#!/usr/bin/env bash
# Prepares the GPU check of the live half (gpu-check.ts) for the device machine, which has a GPU
# and CUDA but no Node toolchain. Run from the repository root after
# `npm run build -w packages/native-cuda && npm run build -w packages/api`.
# Writes, under the git-ignored .device/ folder:
#   .device/colocate-live/gpu-check.mjs           the check, bundled with its imports
#   .device/colocate-live/colocate-live-child.js  the processes it starts (registry, tenants, handover)
#   .device/colocate-live/*.wasm                  the policies' Wasm and the trace importer's (the
#                                                 tenants replay their timelines; plans are made there)
#   .device/colocate-live/lakebed_native.node     the addon (LAKEBED_NATIVE_ADDON points at it)
#   .device/colocate-live/six-infer.plan.json     a scenario's plan made here (default six-infer)
# Then, in one device run with carry [".device"]: bash scripts/colocate-live/run.sh, or
# bash scripts/record-dedup/device-run.sh (records the 1B model, then plans and runs on the GPU).
set -euo pipefail
dir=.device/colocate-live
test -f packages/native-cuda/build/Release/lakebed_native.node || { echo "build packages/native-cuda first" >&2; exit 1; }
test -f packages/core-sim/dist/core-sim.wasm || { echo "build packages/core-sim first" >&2; exit 1; }
[ -s .device/node.xz ] || { mkdir -p .git/info && bash ../shared/tools/device-node.sh >/dev/null; }
mkdir -p "$dir"
cp packages/native-cuda/build/Release/lakebed_native.node "$dir/lakebed_native.node"
cp packages/core-sim/dist/core-sim.wasm packages/traces/dist/*.wasm "$dir/"
esbuild=node_modules/.bin/esbuild
common=(--bundle --platform=node --format=esm --target=node20 "--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);")
"$esbuild" scripts/colocate-live/gpu-check.ts "${common[@]}" --outfile="$dir/gpu-check.mjs" --log-level=warning
"$esbuild" packages/api/src/colocate/live/live-child.ts "${common[@]}" --outfile="$dir/colocate-live-child.js" --log-level=warning
node scripts/colocate-live/make-plan.mjs "${1:-test/fixtures/scenarios/six-infer.json}" "$dir/six-infer.plan.json"
ls -la "$dir"
du -sh .device
