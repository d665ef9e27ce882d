// Finds and loads the native addon. It tries, in order:
//   1. $LAKEBED_NATIVE_ADDON, a path to a lakebed_native.node;
//   2. build/Release and build/Debug of this package (what `npm run build` makes);
//   3. .device/lakebed_native.node in this package or any folder above it: the prebuilt copy
//      carried to the GPU machine, which has no compiler toolchain for Node.
// When all fail, the error lists each place with its reason and says what to do.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { CALL_KINDS } from "./call-kinds.js";
import { DeviceError } from "./errors.js";
import type { NativeBinding } from "./native-binding.js";

const ADDON_FILE = "lakebed_native.node";

export interface LoadedAddon {
  binding: NativeBinding;
  path: string;
}

let cached: LoadedAddon | DeviceError | undefined;

/** The package root: dist/index.js lives one folder below it. */
function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..");
}

export function addonCandidates(): string[] {
  const root = packageRoot();
  const out: string[] = [];
  const fromEnv = process.env.LAKEBED_NATIVE_ADDON;
  if (fromEnv) out.push(resolve(fromEnv));
  out.push(join(root, "build", "Release", ADDON_FILE), join(root, "build", "Debug", ADDON_FILE));
  for (let dir = root; ; dir = dirname(dir)) {
    out.push(join(dir, ".device", ADDON_FILE));
    if (dirname(dir) === dir) break;
  }
  return out;
}

function tryLoad(path: string): NativeBinding {
  const binding = createRequire(import.meta.url)(path) as NativeBinding;
  const kinds = Array.from(binding.callKinds ?? []);
  if (kinds.join() !== CALL_KINDS.join()) {
    throw new Error(
      `it was built from other sources (its calls: ${kinds.join(", ")}); rebuild it`,
    );
  }
  binding.setErrorClass(DeviceError);
  // process.exit() does not run the addon's env cleanup hooks on the main thread; 'exit' does
  // run, on every way out but a fatal signal (then the kernel and the CUDA driver free it all).
  process.once("exit", () => binding.teardownAll());
  return binding;
}

/** The loaded addon; throws DeviceError (code "LOAD") saying what to do when none loads. */
export function loadAddon(): LoadedAddon {
  if (cached === undefined) cached = loadFirst();
  if (cached instanceof DeviceError) throw cached;
  return cached;
}

function loadFirst(): LoadedAddon | DeviceError {
  const tried: string[] = [];
  for (const path of addonCandidates()) {
    if (!existsSync(path)) {
      tried.push(`  ${path}: not there`);
      continue;
    }
    try {
      return { binding: tryLoad(path), path };
    } catch (err) {
      tried.push(`  ${path}: ${(err as Error).message.split("\n")[0]}`);
    }
  }
  const message = [
    "@lakebed/native-cuda: the native addon could not be loaded. Tried:",
    ...tried,
    "To fix it: run `npm run build -w @lakebed/native-cuda` (needs python3, make and g++);",
    `or copy a ${ADDON_FILE} built for Node ${process.versions.node.split(".")[0]} on ` +
      `${process.platform}-${process.arch} to .device/${ADDON_FILE}, or set LAKEBED_NATIVE_ADDON to its path.`,
  ].join("\n");
  return new DeviceError(message, { call: "load", driver: "native", code: "LOAD", driverError: "" });
}
