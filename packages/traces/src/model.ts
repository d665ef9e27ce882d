/**
 * The trace model every importer produces and every consumer (the simulator, the CLI, the tests)
 * reads. It is the contract between packages: change it only together with its consumers.
 *
 * A trace is kept as columns (struct of arrays), one set per device, so that the replay loop can
 * copy them into WebAssembly linear memory in one go and never call back into JavaScript per event.
 *
 * Invariants (checked by `checkDeviceTrace` in validate.ts):
 *  INV-TRACE-1  every column of `events` has exactly `events.length` entries.
 *  INV-TRACE-2  `stream[i]` indexes `streams`; `streams` is sorted ascending by raw value, so stream
 *               index order is PyTorch's own `cudaStream_t` pointer order (its free-block sets sort
 *               by stream pointer first).
 *  INV-TRACE-3  `blockId` names an allocation: ids 0 .. initialLiveBlocks-1 are the blocks live in
 *               `initialState`; every `Alloc` event gets the next id in trace order; `FreeRequested`
 *               and `FreeCompleted` carry the id of the allocation they free. Other actions have -1.
 *  INV-TRACE-4  sizes and addresses are whole numbers of bytes below 2^53 (exact in a float64).
 */

/** What happened at one trace entry. Values are stable: they cross the Wasm boundary as u8. */
export enum Action {
  /** a block was handed out: addr = block address, size = the caller's unrounded request */
  Alloc = 1,
  /** the caller freed a block: addr, size = requested size; it may wait on stream events */
  FreeRequested = 2,
  /** the block really returned to the cache (immediately, or once its stream events completed) */
  FreeCompleted = 3,
  /** cudaMalloc of a new segment: addr = base, size = segment bytes */
  SegmentAlloc = 4,
  /** cudaFree of a whole segment (empty_cache or the out-of-memory path) */
  SegmentFree = 5,
  /** expandable segments: pages mapped at addr, size bytes */
  SegmentMap = 6,
  /** expandable segments: pages unmapped */
  SegmentUnmap = 7,
  /** the allocator gave up: size = rounded request, addr = bytes the driver reported free */
  Oom = 8,
  /** a snapshot was taken (addr 0, size = active bytes); no effect on the allocator */
  Snapshot = 9,
  /** any other recorded action (user_defined, annotate); no effect on the allocator */
  Other = 10,
}

export const ACTION_NAMES: Readonly<Record<Action, string>> = {
  [Action.Alloc]: "alloc",
  [Action.FreeRequested]: "free_requested",
  [Action.FreeCompleted]: "free_completed",
  [Action.SegmentAlloc]: "segment_alloc",
  [Action.SegmentFree]: "segment_free",
  [Action.SegmentMap]: "segment_map",
  [Action.SegmentUnmap]: "segment_unmap",
  [Action.Oom]: "oom",
  [Action.Snapshot]: "snapshot",
  [Action.Other]: "other",
};

/** One device's trace entries as columns, oldest first. */
export interface EventColumns {
  length: number;
  action: Uint8Array;
  /** bytes; for Oom, the free bytes the driver reported */
  addr: Float64Array;
  /** bytes; see Action for what each action records */
  size: Float64Array;
  /** index into DeviceTrace.streams */
  stream: Uint32Array;
  /** microseconds since the Unix epoch; NaN where the file did not record time */
  timeUs: Float64Array;
  /** allocation identity, see INV-TRACE-3 */
  blockId: Int32Array;
}

export type BlockStateKind = "allocated" | "pending_free" | "inactive";

/** A block inside a segment, as PyTorch's snapshot reports it. */
export interface BlockState {
  address: number;
  /** bytes, a multiple of 512 */
  size: number;
  /** the unrounded request of the allocation that owns it (stale for inactive blocks) */
  requestedSize: number;
  state: BlockStateKind;
  /** allocation identity (INV-TRACE-3); -1 for inactive blocks */
  blockId: number;
}

/**
 * One segment: a cudaMalloc'd range, or one contiguous mapped range of an expandable segment.
 * INV-TRACE-5: its blocks are in address order and tile [address, address + totalSize) exactly.
 */
export interface SegmentState {
  address: number;
  totalSize: number;
  /** index into DeviceTrace.streams */
  stream: number;
  pool: "small" | "large";
  expandable: boolean;
  blocks: BlockState[];
}

export interface DeviceTrace {
  device: number;
  events: EventColumns;
  /** raw cudaStream_t values as recorded, ascending (INV-TRACE-2) */
  streams: bigint[];
  /** the allocator state just before events[0]; empty when the trace is complete */
  initialState: SegmentState[];
  /** the state at the end, from the snapshot's `segments` */
  finalState: SegmentState[];
  /** true when the trace starts from an empty allocator (nothing was live or cached before it) */
  complete: boolean;
  /** number of blocks live in initialState (their blockIds are 0 .. initialLiveBlocks-1) */
  initialLiveBlocks: number;
  /** the private memory pools that segments of the final snapshot belong to; empty when none */
  privatePools: PrivatePoolUse[];
  /** which live blocks each recorded operator read and wrote; absent for a plain snapshot */
  access?: AccessColumns;
  /**
   * Where torch.cuda.empty_cache() began, as event indices (its segment_free/unmap follow; the
   * trace length when it released nothing after the last event), ascending. Only a recording
   * allocator that knows its calls says so (liblakebed_torch's snapshots, allocator_settings'
   * `lakebed_empty_cache_at`): then every other segment_free/unmap is the allocator's own work
   * inside a malloc (a lakebed chunk move looks like a release). Absent for PyTorch's snapshots,
   * whose replay infers empty_cache from each burst (core-sim's replay/replay.ts).
   */
  emptyCacheAt?: number[];
  /**
   * The device's total memory, where the recording allocator says it (liblakebed_torch's snapshots,
   * allocator_settings' `lakebed_device_total`): the replay sizes expandable reservations from it.
   * Absent for PyTorch's snapshots (core-sim infers it from the trace's reservations).
   */
  deviceTotalBytes?: number;
}

/** What an operator did to a block. Values are stable (u8); bits: 1 read, 2 written, 4 scratch. */
export enum UseKind {
  Read = 1,
  /** written without being read: a block the operator allocated for its result */
  Write = 2,
  /** mutated in place (or an existing block returned as a result) */
  ReadWrite = 3,
  /** scratch memory the operator allocated and freed during its call, no tensor of it named */
  Scratch = 7,
}

/**
 * Use events: which live blocks each recorded operator touched, in trace order, from the record
 * python/lakebed_record.py writes beside a snapshot, joined to the allocator trace by
 * access-join.ts (which says how). A trace knows nothing of accesses without one.
 *
 *  INV-USE-1  every column of `uses` has `uses.length` entries, every column of `operators`
 *             `operators.length`; `name` indexes `operatorNames`.
 *  INV-USE-2  `position` is in 0 .. events.length and never decreases (uses and operators alike):
 *             the use happened after event position-1 and before event `position`.
 *  INV-USE-3  a use's `blockId` names a block live at its position: allocated by an event before it
 *             (or live in initialState), and its free_requested, if any, at `position` or later.
 *  INV-USE-4  a use's `operator` indexes `operators`: the operator that made the use.
 */
export interface AccessColumns {
  /** ATen overloads as PyTorch prints them, e.g. "aten.mm.default" */
  operatorNames: string[];
  operators: {
    length: number;
    /** index into operatorNames */
    name: Uint32Array;
    position: Uint32Array;
    /** when the operator was called and returned (host clock), µs since the Unix epoch */
    startUs: Float64Array;
    endUs: Float64Array;
  };
  uses: {
    length: number;
    position: Uint32Array;
    blockId: Int32Array;
    /** UseKind */
    kind: Uint8Array;
    operator: Uint32Array;
  };
  /** what the join could not place, so that coverage can say so */
  join: AccessJoinSummary;
}

export interface AccessJoinSummary {
  /** operators the record holds for this device */
  operatorsRecorded: number;
  /** of them, those that returned before the trace's first event (a ring buffer that wrapped) */
  operatorsBeforeTrace: number;
  /** newly allocated results found as the alloc event that made them, and those not found */
  resultsMatched: number;
  resultsUnmatched: number;
  /** tensors whose storage is no live block at the operator's position (memory from outside the allocator) */
  tensorsUnresolved: number;
}

/**
 * A private memory pool that PyTorch served some of the trace's allocations from: a CUDA graph's
 * (`torch.cuda.graph`, torch.compile's "reduce-overhead" mode) or a `torch.cuda.MemPool`'s.
 * Trace entries do not say which pool an allocation went to, and a private pool's segments are
 * known only where they outlive the trace (the snapshot's `segment_pool_id`), so lakebed replays
 * every allocation in the default pools and reports the pools it saw (verify, info, replay).
 */
export interface PrivatePoolUse {
  /** `segment_pool_id` as recorded: (graph pool id, 0) for a CUDA graph, (0, pool id) for a MemPool */
  id: [number, number];
  kind: "cuda_graph" | "mempool";
  /** segments of the final snapshot in the pool, and their bytes */
  segments: number;
  bytes: number;
}

/** PyTorch's allocator settings as the snapshot recorded them (`allocator_settings`). */
export interface AllocatorSettings {
  /** the PYTORCH_CUDA_ALLOC_CONF string, "" when none */
  conf: string;
  /** bytes; -1 when unlimited */
  maxSplitSize: number;
  garbageCollectionThreshold: number;
  expandableSegments: boolean;
  /** divisions for each of the 16 power-of-two size buckets (1 MiB .. 32 GiB starts); 0 = off */
  roundupPower2Divisions: number[];
  /** every key as recorded, for display */
  raw: Record<string, string | number | boolean>;
}

export type TraceFormat = "pickle" | "json" | "arrow";

export interface Trace {
  /** the path the trace was read from */
  file: string;
  format: TraceFormat;
  gzip: boolean;
  /** null for files that predate `allocator_settings` (PyTorch before about 2.3) */
  allocatorSettings: AllocatorSettings | null;
  /** devices that have events or segments, by ordinal */
  devices: DeviceTrace[];
  /** legacy PyTorch 2.0 layout (blocks with `history`, no per-event trace) */
  legacy: boolean;
  /** `external_annotations`: user ranges such as Optimizer.step */
  annotations: Annotation[];
}

export interface Annotation {
  name: string;
  stage: "START" | "END";
  device: number;
  timeUs: number;
}
