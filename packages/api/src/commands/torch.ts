import { torchPaths } from "@lakebed/torch";
import { writeHuman, writeJson } from "../output.js";

/**
 * `lakebed torch`: where the PyTorch allocator library and its Python module are, and the three
 * lines that train under a policy. The library is packages/torch's build (the policy Wasm compiled
 * to C with wasm2c, linked with the native CUDA driver); without wasm2c the build skips it.
 */
export async function torchCommand(options: { json?: boolean }): Promise<number> {
  const p = torchPaths();
  const enable = [
    `export PYTHONPATH=${p.pythonDir}:$PYTHONPATH LAKEBED_TORCH_LIB=${p.library}`,
    "import lakebed_torch",
    'lakebed_torch.enable(policy="lakebed")  # before the first CUDA allocation; conf="..." as PYTORCH_CUDA_ALLOC_CONF',
  ];
  if (options.json) {
    writeJson({ library: p.library, built: p.built, pythonModule: `${p.pythonDir}/lakebed_torch`, harness: p.harness, enable });
    return 0;
  }
  const lines = [
    `library: ${p.library}${p.built ? "" : " (not built: apt-get install wabt g++, then npm run build)"}`,
    `python module: ${p.pythonDir}/lakebed_torch`,
    "to train under lakebed:",
    ...enable.map((l) => `  ${l}`),
    "then lakebed_torch.memory_stats() for statistics, lakebed_torch.dump_snapshot(path) for `lakebed replay`",
  ];
  writeHuman(lines.join("\n"));
  return p.built ? 0 : 1;
}
