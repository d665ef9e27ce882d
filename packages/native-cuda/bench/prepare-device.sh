#!/usr/bin/env bash
# Prepares the GPU check for the device machine (it has a GPU and CUDA, but no Node toolchain).
# Run from the repository root after `npx turbo run build --filter=@lakebed/native-cuda`.
# Writes, under the git-ignored .device/ folder:
#   .device/node.xz                  Node for that machine (../shared/tools/device-node.sh)
#   .device/lakebed_native.node      the addon, where the package's loader looks for a prebuilt copy
#   .device/native-cuda/dist/        the built TypeScript of this package
#   .device/native-cuda/raw_bench    the C++ benchmark of the raw driver calls (dlopens libcuda)
# Then, in one device run with carry [".device"]:
#   xz -dc .device/node.xz > .device/node && chmod +x .device/node && export PATH=$PWD/.device:$PATH;
#   node packages/native-cuda/bench/gpu-check.mjs --out $OUT
set -euo pipefail
pkg=packages/native-cuda
test -f "$pkg/build/Release/lakebed_native.node" || { echo "build the package first" >&2; exit 1; }
# device-node.sh records .device/ in .git/info/exclude (the folder may not exist yet)
[ -s .device/node.xz ] || { mkdir -p .git/info && bash ../shared/tools/device-node.sh >/dev/null; }
mkdir -p .device/native-cuda
cp "$pkg/build/Release/lakebed_native.node" .device/lakebed_native.node
rm -rf .device/native-cuda/dist && cp -r "$pkg/dist" .device/native-cuda/dist
printf '{ "name": "@lakebed/native-cuda", "type": "module" }\n' > .device/native-cuda/package.json
# -static-libstdc++: the device image's C++ runtime may differ from this machine's.
g++ -O2 -std=c++17 -D_GNU_SOURCE -static-libstdc++ -I"$pkg/src/native" \
  "$pkg/bench/raw_bench.cc" "$pkg/src/native/cuda_loader.cc" "$pkg/src/native/cuda_backend.cc" \
  "$pkg/src/native/driver_core.cc" -ldl -o .device/native-cuda/raw_bench
ls -la .device .device/native-cuda
