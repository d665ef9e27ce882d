// Loads the policies' WebAssembly module (core-sim.wasm, shipped beside this file in dist/) and
// makes instances: one per replay, so every replay starts from a clean allocator.
import { readFileSync } from "node:fs";
import type { AllocatorConf } from "./conf.js";

/** The flat exports of assembly/index.ts. Sizes and addresses are numbers of bytes. */
export interface CoreSimExports {
  memory: WebAssembly.Memory;
  setup(policy: number, device: number, capacityBytes: number, deviceTotalBytes: number): void;
  setConf(maxSplitSizeBytes: number, maxNonSplitRoundingBytes: number, gcThreshold: number, expandable: number, largeSegmentBytes: number): void;
  setRoundupDivisions(bucket: number, divisions: number): void;
  setVmsConf(vmmDefragment: number, fragLimitBytes: number, defragLevel: number, reuseLimit: number, autoGCGiB: number, reAlloc: number): void;
  setLakebedConf(slackPermille: number, fitWindow: number, largePageMiB: number): void;
  policyCounter(i: number): number;
  eventsAllocate(length: number, blockIds: number): void;
  eventsAction(): number;
  eventsAddr(): number;
  eventsSize(): number;
  eventsStream(): number;
  eventsBlockId(): number;
  start(traceAddresses: number, timelinePoints: number): void;
  adoptSegment(address: number, stream: number, small: number, expandable: number): void;
  adoptBlock(address: number, size: number, requested: number, state: number, blockId: number): void;
  adoptDone(): void;
  replay(from: number, to: number, checkEvery: number): number;
  brokenInvariant(): number;
  brokenLocalInvariant(): number;
  setLocalCheck(on: number): void;
  currentEvent(): number;
  statCount(): number;
  statValue(i: number): number;
  replayCounterCount(): number;
  replayCounter(i: number): number;
  peakReservedEventIndex(): number;
  firstAddressMismatch(): number;
  segmentLogCount(): number;
  segmentLogEventIndex(): number;
  segmentLogAction(): number;
  segmentLogAddr(): number;
  segmentLogSize(): number;
  timelineCount(): number;
  timelineEvent(): number;
  timelineAllocated(): number;
  timelineReserved(): number;
  layoutWrite(): number;
  layoutBlockCount(): number;
  layoutSegAddress(): number;
  layoutSegSize(): number;
  layoutSegStream(): number;
  layoutSegSmall(): number;
  layoutSegExpandable(): number;
  layoutSegFirstBlock(): number;
  layoutSegBlockCount(): number;
  layoutBlkAddress(): number;
  layoutBlkSize(): number;
  layoutBlkRequested(): number;
  layoutBlkState(): number;
  layoutBlkTraceId(): number;
  deviceCallKinds(): number;
  deviceCalls(kind: number): number;
  deviceCallBytes(kind: number): number;
  deviceMicros(): number;
  devicePeakPhysicalBytes(): number;
  deviceCallLogEnable(): number;
  deviceCallLogCount(): number;
  deviceCallLogKinds(): number;
  deviceCallLogBytes(): number;
  setVerifyData(): number;
  firstVerifyFailure(): number;
  policyMalloc(requestBytes: number, stream: number): number;
  policyFree(handle: number): void;
  policyFreeRequest(handle: number): void;
  policyFreeComplete(handle: number): void;
  policyEmptyCache(): void;
  policyBlockAddress(handle: number): number;
  policyBlockSize(handle: number): number;
  policyBlockRequested(handle: number): number;
  policyBlockStream(handle: number): number;
  policySetCapacity(capacityBytes: number): void;
  deviceMappingCount(): number;
  deviceMappingStarts(): number;
  deviceMappingSizes(): number;
  deviceMappingHandles(): number;
  deviceMallocCount(): number;
  deviceMallocStarts(): number;
  deviceMallocSizes(): number;
  roundSizeBytes(requestBytes: number): number;
  allocationSizeBytes(roundedBytes: number): number;
  isSmallBytes(roundedBytes: number): number;
  shouldSplitBytes(blockBytes: number, roundedBytes: number, small: number): number;
}

/** assembly/index.ts POLICY_*: the policy setup() makes. */
export const POLICY_CODES = { caching: 0, expandable: 1, vms: 2, lakebed: 3 } as const;
export const DEVICE_SIMULATED = 0;
export const DEVICE_IMPORTED = 1;

/**
 * The "device" imports (assembly/device/imported.ts lists them with their signatures). A
 * simulated replay never calls them; native-cuda binds them to a Driver for live runs.
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

const DEVICE_IMPORT_NAMES = [
  "memCreate", "memRelease", "addressReserve", "addressFree", "map", "setAccess", "unmap", "malloc", "free",
  "copyToHost", "copyFromHost", "memGetInfoFree", "memGetInfoTotal", "fillPattern", "checkPattern",
];

/**
 * A fresh instance; `device` binds the imports a live run uses. `module` is another build of the
 * same source (wasmModule(file)), and `globals` the values of the globals it imports from env
 * (the broken-variants build imports the number of the variant to run).
 */
export function instantiate(device?: DeviceImports, module: WebAssembly.Module = wasmModule(), globals: Record<string, number> = {}): CoreSimExports {
  let memory: WebAssembly.Memory | null = null;
  const deviceImports: DeviceImports = {};
  for (const name of DEVICE_IMPORT_NAMES) deviceImports[name] = device?.[name] ?? unbound(name);
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
}
