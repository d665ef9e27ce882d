export interface TorchPaths {
  /** build/liblakebed_torch.so */
  library: string;
  /** build/lakebed-torch-harness, the host harness the tests run */
  harness: string;
  /** the folder holding the lakebed_torch Python module (put it on sys.path or PYTHONPATH) */
  pythonDir: string;
  /** whether the library exists (the build skips it without wasm2c or a compiler) */
  built: boolean;
}
export function torchPaths(): TorchPaths;
