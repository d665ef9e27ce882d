#!/usr/bin/env bash
# Prepares the live tiering run for the device machine (a GPU and CUDA, no Node toolchain), under
# the git-ignored .device/tiering/:
#   lakebed.mjs              the lakebed CLI bundled with its packages (esbuild)
#   core-sim.wasm, *.wasm    the policies' Wasm and the trace importer's, loaded from beside the bundle
#   lakebed_native.node      the addon as built here (loaded by LAKEBED_NATIVE_ADDON)
#   node_modules/commander   the one package the CLI requires at run time with --json
#   host_tier_bandwidth      native-cuda's bench/host_tier_bandwidth.cc (raw pinned copies and the
#                            driver's, same sizes; dlopens libcuda)
#   fixtures/                the access recordings it replays, with their records and stats, and
#                            ../shared/traces/gpt2_ckpt.def (about 24 GiB at its peak) for the shrink
# Run from the repository root after building native-cuda, core-sim, traces and api; then, in one
# device run with carry [".device/node.xz", ".device/tiering"]: bash scripts/tiering-live/run.sh
set -euo pipefail
out=.device/tiering
pkg=packages/native-cuda
test -f "$pkg/build/Release/lakebed_native.node" || { echo "build native-cuda first" >&2; exit 1; }
test -f packages/core-sim/dist/core-sim.wasm || { echo "build core-sim first" >&2; exit 1; }
[ -s .device/node.xz ] || { mkdir -p .git/info && bash ../shared/tools/device-node.sh >/dev/null; }
rm -rf "$out" && mkdir -p "$out/fixtures"
node_modules/.bin/esbuild packages/api/bin/lakebed.js --bundle --platform=node --format=esm \
  --target=node20 --outfile="$out/lakebed.mjs" --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
cp packages/core-sim/dist/core-sim.wasm packages/traces/dist/*.wasm "$out/"
# the CLI loads commander at run time (createRequire), from beside the bundle; --json needs no other
mkdir -p "$out/node_modules" && cp -r packages/api/node_modules/commander "$out/node_modules/"
cp "$pkg/build/Release/lakebed_native.node" "$out/lakebed_native.node"
# -static-libstdc++: the device image's C++ runtime may differ from this machine's.
g++ -O2 -std=c++17 -D_GNU_SOURCE -static-libstdc++ -I"$pkg/src/native" \
  "$pkg/bench/host_tier_bandwidth.cc" "$pkg/src/native/cuda_loader.cc" \
  "$pkg/src/native/cuda_backend.cc" "$pkg/src/native/driver_core.cc" -ldl -o "$out/host_tier_bandwidth"
for name in gpt2_train.def llama_lora.exp gpt2_ckpt.def; do
  cp test/fixtures/access/$name.pickle.gz test/fixtures/access/$name.access.json.gz test/fixtures/access/$name.stats.json "$out/fixtures/"
done
mkdir -p "$out/fixtures/shared"
cp ../shared/traces/gpt2_ckpt.def.pickle.gz "$out/fixtures/shared/"
du -sh "$out"
