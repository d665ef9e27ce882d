// Loads the policies' WebAssembly module (core-sim.wasm, shipped beside this file in dist/) and
// makes instances: one per replay, so every replay starts from a clean allocator.
import { readFileSync } from "node:fs";
import type { AllocatorConf } from "./conf.js";
import { POLICY_REGISTRY, type PolicyName } from "./policy-registry.js";
import type { CoreSimExports as GeneratedExports } from "./wasm-exports.js";

/**
 * The flat exports of assembly/index.ts, as the build declares them (wasm-exports.ts, generated
 * from asc's declarations). Sizes and addresses are numbers of bytes.
 */
export type CoreSimExports = GeneratedExports;

/** The number setup() takes for each policy (the registry's; assembly/index.ts POLICY_*). */
export const POLICY_CODES = Object.fromEntries(POLICY_REGISTRY.map((p) => [p.name, p.code])) as Readonly<Record<PolicyName, number>>;
export const DEVICE_SIMULATED = 0;
export const DEVICE_IMPORTED = 1;

/**
 * The "device" imports (assembly/device/imported.ts lists them with their signatures). A
 * simulated replay never calls them; native-cuda binds them to a Driver for live runs
 * (its src/wasm-imports.ts).
 */
export type DeviceImports = Record<string, (...args: number[]) => number | void>;

const compiled = new Map<string, WebAssembly.Module>();

/**
 * The compiled module at `file`, compiled once per process: by default the package's own
 * core-sim.wasm; the property harness passes the build of the deliberately broken variants
 * (build/test/, scripts/build-test.mjs), which has the same exports.
 */
export function wasmModule(file: URL = new URL("./core-sim.wasm", import.meta.url)): WebAssembly.Module {
  let m = compiled.get(file.href);
  if (!m) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new Error(`@lakebed/core-sim: cannot read ${file.pathname} (${(e as Error).message}); build the package with 'npm run build -w @lakebed/core-sim'`);
    }
    m = new WebAssembly.Module(bytes);
    compiled.set(file.href, m);
  }
  return m;
}

/** An AssemblyScript string (UTF-16, its byte length in the 4 bytes before it) at ptr. */
function readString(memory: WebAssembly.Memory, ptr: number): string {
  if (!ptr) return "";
  const bytes = new Uint32Array(memory.buffer, ptr - 4, 1)[0];
  return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, bytes >>> 1));
}

/** Thrown by the Wasm's own assertions (abort); the replay adds the event index. */
export class CoreSimAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CoreSimAbort";
  }
}

const unbound = (name: string) => () => {
  throw new Error(`@lakebed/core-sim: device import '${name}' is not bound (a simulated replay never calls it)`);
};

/**
 * A fresh instance; `device` binds the imports a live run uses. `module` is another build of the
 * same source (wasmModule(file)), and `globals` the values of the globals it imports from env
 * (the broken-variants build imports the number of the variant to run).
 */
export function instantiate(device?: DeviceImports, module: WebAssembly.Module = wasmModule(), globals: Record<string, number> = {}): CoreSimExports {
  let memory: WebAssembly.Memory | null = null;
  const deviceImports: DeviceImports = {};
  // the device imports the module has (asc keeps those its code calls)
  for (const { module: from, name } of WebAssembly.Module.imports(module)) {
    if (from === "device") deviceImports[name] = device?.[name] ?? unbound(name);
  }
  const instance = new WebAssembly.Instance(module, {
    env: {
      ...globals,
      abort(message: number, file: number, line: number, column: number) {
        const m = memory ? readString(memory, message) : "abort";
        const f = memory ? readString(memory, file) : "";
        throw new CoreSimAbort(`${m} (${f}:${line}:${column})`);
      },
    },
    device: deviceImports,
  });
  const exports = instance.exports as unknown as CoreSimExports;
  memory = exports.memory;
  return exports;
}

/** Hands the settings to an instance (before start). */
export function applyConf(wasm: CoreSimExports, conf: AllocatorConf): void {
  wasm.setConf(
    conf.maxSplitSizeBytes ?? -1,
    conf.maxNonSplitRoundingBytes,
    conf.garbageCollectionThreshold,
    conf.expandableSegments ? 1 : 0,
    conf.largeSegmentSizeBytes,
  );
  conf.roundupPower2Divisions.forEach((divisions, bucket) => wasm.setRoundupDivisions(bucket, divisions));
  const g = conf.gmlake;
  wasm.setVmsConf(g.vmmDefragment, g.fragLimitBytes, g.defragLevel, g.reuseLimit, g.autoGCGiB, g.reAlloc);
  wasm.setLakebedConf(conf.lakebed.slackPermille, conf.lakebed.fitWindow, conf.lakebed.largePageMiB);
  // the host arena's size when the settings name it; a replay sizes it from its trace otherwise (use-clock.ts)
  wasm.setTieringConf(conf.tiering.victim === "belady" ? 1 : 0, (conf.tiering.hostMiB ?? 0) * 1024 * 1024);
}
