#!/usr/bin/env bash
# Prepares driver-time.ts (the simulator's allocator time against the real driver time) for the
# device machine, which has a GPU and CUDA but no npm: the bundled script, the addon, the Wasm and
# the two traces it replays, under the git-ignored .device/. Run from the repository root after
# `npx turbo run build`. Then, in one device run with carry [".device"]:
#   xz -dc .device/node.xz > .device/node && chmod +x .device/node && export PATH=$PWD/.device:$PATH &&
#   node .device/driver-time/driver-time.mjs --traces .device/traces --out $OUT
# .device/driver-time runs from any folder on its own (checked with --backend host from /tmp).
set -euo pipefail
bash packages/native-cuda/bench/prepare-device.sh >/dev/null   # node.xz, the addon
mkdir -p .device/driver-time .device/traces
node_modules/.bin/esbuild scripts/native-backend/driver-time.ts --bundle --platform=node --format=esm \
  --target=node20 --outfile=.device/driver-time/driver-time.mjs --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
# the Wasm modules the packages load from beside the bundle
cp packages/core-sim/dist/core-sim.wasm packages/traces/dist/*.wasm .device/driver-time/
# commander, which @lakebed/api's cli.ts loads with require() when the module loads (createRequire:
# esbuild cannot follow it, so the bundle keeps the call): Node finds it in node_modules beside the
# bundle, the version the CLI resolves (it has no dependencies of its own). Without it the bundle
# stopped at "Cannot find module 'commander'" on the device machine, before any replay.
main=$(node -p "require.resolve('commander', { paths: ['packages/api'] })")   # <package>/index.js
commander=$(dirname "$main")
rm -rf .device/driver-time/node_modules && mkdir -p .device/driver-time/node_modules
cp -r "$commander" .device/driver-time/node_modules/commander
for t in gpt2_ckpt.def llama_lora.exp; do cp "../shared/traces/$t.pickle.gz" .device/traces/; done
du -sh .device
