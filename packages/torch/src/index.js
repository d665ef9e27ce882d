// Where the PyTorch allocator's pieces are: the library scripts/build.mjs builds, the host harness
// beside it, and the repository's Python module. Paths only; nothing here loads the library.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkgRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The paths, and whether the library was built (the build skips it without wasm2c or a compiler). */
export function torchPaths() {
  const library = join(pkgRoot, "build", "liblakebed_torch.so");
  return {
    library,
    harness: join(pkgRoot, "build", "lakebed-torch-harness"),
    pythonDir: resolve(pkgRoot, "../../python"),
    built: existsSync(library),
  };
}
