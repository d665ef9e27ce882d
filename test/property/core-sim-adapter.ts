import {
  applyConf,
  defaultAllocConf,
  DEVICE_SIMULATED,
  instantiate,
  parseAllocConf,
  POLICY_CODES,
  STAT_NAMES,
  type AllocatorConf,
  type CoreSimExports,
  type PolicyName,
} from "@lakebed/core-sim";
import type {
  Allocation,
  AllocatorUnderTest,
  DeviceEvent,
  LiveBlock,
  PhysicalMapping,
  PolicyUnderTest,
  ReservedRange,
  SegmentLayout,
} from "./allocator-under-test.js";
import { policyEntry } from "@lakebed/core-sim";
import { Action } from "@lakebed/traces";

/** Another build of core-sim's module, and the values of the globals it imports. */
export interface CoreSimBuild {
  module: WebAssembly.Module;
  globals: Record<string, number>;
}

/**
 * The simulated device's memory: 256 GiB, over three H100s, so that "no limit" is no limit for any
 * program the generators make, yet small enough for the per-page tables of policies that reserve
 * address space in proportion to the device (expandable segments and lakebed take 1 1/8 x total).
 */
export const CORE_SIM_DEVICE_BYTES = 256 * 2 ** 30;
const SEGMENT_ACTIONS: Record<number, DeviceEvent["action"]> = {
  [Action.SegmentAlloc]: "segment_alloc",
  [Action.SegmentFree]: "segment_free",
  [Action.SegmentMap]: "segment_map",
  [Action.SegmentUnmap]: "segment_unmap",
};

/**
 * The policies of @lakebed/core-sim as AllocatorUnderTest: one fresh Wasm instance per allocator,
 * made by the package's own loader, driven one request at a time through the module's flat
 * "driving a policy directly" exports (policyMalloc, policyFree, policyEmptyCache,
 * policySetCapacity). What the harness checks is read back from the policy and the simulated
 * device, never from this adapter's own bookkeeping:
 *  - live blocks: each handle the caller holds, through policyBlockAddress/Size/Requested/Stream;
 *  - reserved ranges and their blocks: the policy's own layout (layoutWrite), as `lakebed verify`
 *    compares it with PyTorch's;
 *  - physical mappings: the simulated device's (va, bytes, handle) table;
 *  - device events: the policy's segment log.
 *
 * Limits are PyTorch's per-process limit (set_per_process_memory_fraction), enforced by the policy.
 * `build` selects another build of the same module (the broken variants of broken-variants.ts).
 */
export class CoreSimAllocator implements AllocatorUnderTest {
  private readonly wasm: CoreSimExports;
  private logRead = 0;
  /** handles the caller holds (the harness's model checks that they are exactly the live blocks) */
  private readonly handles = new Set<number>();

  constructor(policy: PolicyName, conf: AllocatorConf, build?: CoreSimBuild) {
    const w = build ? instantiate(undefined, build.module, build.globals) : instantiate();
    w.setup(POLICY_CODES[policy], DEVICE_SIMULATED, 0, CORE_SIM_DEVICE_BYTES);
    applyConf(w, conf);
    w.start(0, 0);
    w.setLocalCheck(1);
    this.wasm = w;
  }

  malloc(requestedBytes: number, stream: number): Allocation | null {
    const handle = this.wasm.policyMalloc(requestedBytes, stream);
    if (handle < 0) return null;
    this.handles.add(handle);
    return { handle, address: this.wasm.policyBlockAddress(handle), sizeBytes: this.wasm.policyBlockSize(handle) };
  }

  free(handle: number): void {
    this.wasm.policyFree(handle);
    this.handles.delete(handle);
  }

  emptyCache(): void {
    this.wasm.policyEmptyCache();
  }

  setCapacity(capacityBytes: number | null): boolean {
    this.wasm.policySetCapacity(capacityBytes ?? 0);
    return true;
  }

  isValid(level: "local" | "full"): boolean {
    return (level === "full" ? this.wasm.brokenInvariant() : this.wasm.brokenLocalInvariant()) === 0;
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    const n = Math.min(this.wasm.statCount(), STAT_NAMES.length);
    for (let i = 0; i < n; i++) out[STAT_NAMES[i]] = this.wasm.statValue(i);
    return out;
  }

  liveBlocks(): LiveBlock[] {
    const w = this.wasm;
    return [...this.handles].map((handle) => ({
      handle,
      address: w.policyBlockAddress(handle),
      sizeBytes: w.policyBlockSize(handle),
      requestedBytes: w.policyBlockRequested(handle),
      stream: w.policyBlockStream(handle),
    }));
  }

  reservedRanges(): ReservedRange[] {
    return this.layout().map(({ address, sizeBytes, stream }) => ({ address, sizeBytes, stream }));
  }

  layout(): SegmentLayout[] {
    const w = this.wasm;
    const segments = w.layoutWrite();
    const blocks = w.layoutBlockCount();
    const mem = w.memory.buffer;
    const segAddress = new Float64Array(mem, w.layoutSegAddress(), segments);
    const segSize = new Float64Array(mem, w.layoutSegSize(), segments);
    const segStream = new Int32Array(mem, w.layoutSegStream(), segments);
    const segFirst = new Int32Array(mem, w.layoutSegFirstBlock(), segments);
    const segCount = new Int32Array(mem, w.layoutSegBlockCount(), segments);
    const blkAddress = new Float64Array(mem, w.layoutBlkAddress(), blocks);
    const blkSize = new Float64Array(mem, w.layoutBlkSize(), blocks);
    return Array.from({ length: segments }, (_, s) => ({
      address: segAddress[s],
      sizeBytes: segSize[s],
      stream: segStream[s],
      blocks: Array.from({ length: segCount[s] }, (_, k) => ({ address: blkAddress[segFirst[s] + k], sizeBytes: blkSize[segFirst[s] + k] })),
    }));
  }

  /**
   * The device's physical memory as seen from virtual addresses: every mapping (a whole physical
   * handle, so at offset 0) and every cudaMalloc'd range (memory of its own; the caching
   * allocator's small pool in vms is cudaMalloc'd).
   */
  physicalMappings(): PhysicalMapping[] {
    const w = this.wasm;
    const out: PhysicalMapping[] = [];
    const mem = () => w.memory.buffer;
    const n = w.deviceMappingCount();
    if (n > 0) {
      const starts = new BigUint64Array(mem(), w.deviceMappingStarts(), n);
      const sizes = new BigUint64Array(mem(), w.deviceMappingSizes(), n);
      const handles = new Int32Array(mem(), w.deviceMappingHandles(), n);
      for (let i = 0; i < n; i++) out.push({ address: Number(starts[i]), sizeBytes: Number(sizes[i]), chunk: handles[i], chunkOffset: 0 });
    }
    const m = w.deviceMallocCount();
    if (m > 0) {
      const starts = new BigUint64Array(mem(), w.deviceMallocStarts(), m);
      const sizes = new BigUint64Array(mem(), w.deviceMallocSizes(), m);
      // named by their start (negative, apart from handles), which holds while the range lives
      for (let i = 0; i < m; i++) out.push({ address: Number(starts[i]), sizeBytes: Number(sizes[i]), chunk: -Number(starts[i]), chunkOffset: 0 });
    }
    return out;
  }

  drainDeviceEvents(): DeviceEvent[] {
    const w = this.wasm;
    const n = w.segmentLogCount();
    const mem = w.memory.buffer;
    const action = new Uint8Array(mem, w.segmentLogAction(), n);
    const addr = new Float64Array(mem, w.segmentLogAddr(), n);
    const size = new Float64Array(mem, w.segmentLogSize(), n);
    const out: DeviceEvent[] = [];
    for (let i = this.logRead; i < n; i++) out.push({ action: SEGMENT_ACTIONS[action[i]], address: addr[i], sizeBytes: size[i] });
    this.logRead = n;
    return out;
  }

  dispose(): void {}
}

/**
 * A core-sim policy under test. `confText` is a settings string in `lakebed replay --conf` syntax
 * (PyTorch's keys and GMLake's), so that a failing program replays with the same settings.
 */
export function coreSimPolicy(name: PolicyName, confText = "", build?: CoreSimBuild, label?: string): PolicyUnderTest {
  const conf: AllocatorConf = confText ? parseAllocConf(confText) : defaultAllocConf();
  const entry = policyEntry(name);
  conf.expandableSegments = entry.expandableSegments;
  return {
    name: label ?? (confText ? `${name}[${confText}]` : name),
    replayPolicy: name,
    virtualMemory: entry.virtualMemory,
    deviceBytes: CORE_SIM_DEVICE_BYTES,
    capacitySlackBytes: entry.capacityOvershootBytes,
    conf: confText || undefined,
    create: () => new CoreSimAllocator(name, conf, build),
  };
}
