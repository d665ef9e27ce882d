// The Wasm exports: flat functions over numbers, nothing managed crosses the boundary. Sizes and
// addresses are f64 (whole bytes); pointers are offsets into this instance's memory, for the
// TypeScript side to view as typed arrays. One instance serves one replay (or one live policy):
//
//   setup -> setConf / setRoundupDivisions -> eventsAllocate (+ write the columns) -> start
//     -> adoptSegment / adoptBlock / adoptDone (a trace recorded mid-run)
//     -> replay(from, to, checkEvery) ... -> read stats, segment log, layout, device counters
//
// A policy can also be driven directly, one request at a time (policyMalloc, policyFree, ...),
// which is what the property tests do.

import { Device, CALL_KINDS } from "./device/device";
import { SimulatedDevice } from "./device/simulated";
import { ImportedDevice } from "./device/imported";
import { CallLog } from "./device/call-log";
import { copyMicros, duplexCopyMicros, pinMicros, callMicros } from "./device/cost-model";
import { AllocatorConfig, UNLIMITED } from "./policies/config";
import { roundSize, allocationSize, shouldSplitRemainder, isSmallSize } from "./policies/rounding";
import { STAT_COUNT } from "./policies/stats";
import { Policy } from "./policies/policy";
import { bRequested, bStream } from "./memory/block-table";
import { CachingAllocator } from "./policies/caching/caching";
import { LakebedPolicy } from "./policies/lakebed/lakebed";
import { VmsPolicy } from "./policies/vms/vms";
import { vmsConf } from "./policies/vms/config";
export { setVmsConf } from "./policies/vms/config";
export { setLakebedConf } from "./policies/lakebed/lakebed";
import { TieringPolicy } from "./policies/tiering/tiering";
export { setTieringConf } from "./policies/tiering/tiering";
import { UseColumns } from "./replay/uses";
import { trackChanges } from "./memory/changed-blocks";
import { SegmentLog } from "./replay/segment-log";
import { Layout } from "./replay/layout";
import { Replay, EventColumns, buildOracle, COUNTERS } from "./replay/replay";

export const POLICY_CACHING: i32 = 0;
export const POLICY_EXPANDABLE: i32 = 1;
export const POLICY_VMS: i32 = 2;
export const POLICY_LAKEBED: i32 = 3;
export const POLICY_TIERING: i32 = 4;
export const DEVICE_SIMULATED: i32 = 0;
export const DEVICE_IMPORTED: i32 = 1;

let policyKind: i32 = POLICY_CACHING;
let capacity: u64 = 0;
let device: Device | null = null;
let simulated: SimulatedDevice | null = null;
let imported: ImportedDevice | null = null;
const conf = new AllocatorConfig();
const log = new SegmentLog();
const layout = new Layout();
let events: EventColumns | null = null;
let blockIdCount: i32 = 0;
let uses: UseColumns | null = null;
let policy: Policy | null = null;
let replayState: Replay | null = null;

/**
 * Chooses the policy and the device. capacityBytes: PyTorch's per-process limit
 * (set_per_process_memory_fraction x total), 0 for none. deviceTotalBytes: the device's memory
 * (what cudaMemGetInfo reports as total; the simulated device holds at most max(total, capacity)).
 */
export function setup(kind: i32, deviceKind: i32, capacityBytes: f64, deviceTotalBytes: f64): void {
  policyKind = kind;
  capacity = <u64>capacityBytes;
  const total = <u64>deviceTotalBytes;
  if (deviceKind == DEVICE_SIMULATED) {
    const sim = new SimulatedDevice(max(total, capacity), total);
    simulated = sim;
    device = sim;
  } else {
    const live = new ImportedDevice(max(total, capacity), total);
    imported = live;
    device = live;
  }
}

/** maxSplitSizeBytes < 0: unlimited. gcThreshold 0: off. */
export function setConf(maxSplitSizeBytes: f64, maxNonSplitRoundingBytes: f64, gcThreshold: f64, expandable: i32, largeSegmentBytes: f64): void {
  conf.maxSplitSizeBytes = maxSplitSizeBytes < 0 ? UNLIMITED : <u64>maxSplitSizeBytes;
  conf.maxNonSplitRoundingBytes = <u64>maxNonSplitRoundingBytes;
  conf.garbageCollectionThreshold = gcThreshold;
  conf.expandableSegments = expandable != 0;
  conf.largeSegmentBytes = <u64>largeSegmentBytes;
}

export function setRoundupDivisions(bucket: i32, divisions: i32): void {
  conf.roundupDivisions[bucket] = <u32>divisions;
}

/** Room for `length` events and for allocation ids 0 .. blockIds-1. */
export function eventsAllocate(length: i32, blockIds: i32): void {
  events = new EventColumns(length);
  blockIdCount = blockIds;
}

export function eventsAction(): usize { return changetype<EventColumns>(events).action; }
export function eventsAddr(): usize { return changetype<EventColumns>(events).addr; }
export function eventsSize(): usize { return changetype<EventColumns>(events).size; }
export function eventsStream(): usize { return changetype<EventColumns>(events).stream; }
export function eventsBlockId(): usize { return changetype<EventColumns>(events).blockId; }

/**
 * Room for `length` use events and the clock of `positions` positions (events + 1), after
 * eventsAllocate; a trace without use events never calls it (replay/uses.ts).
 */
export function usesAllocate(length: i32, events: i32): void {
  uses = new UseColumns(length, events, blockIdCount);
}
export function usesPosition(): usize { return changetype<UseColumns>(uses).position; }
export function usesBlockId(): usize { return changetype<UseColumns>(uses).blockId; }
export function usesKind(): usize { return changetype<UseColumns>(uses).kind; }
export function usesOperator(): usize { return changetype<UseColumns>(uses).operator; }
export function usesClock(): usize { return changetype<UseColumns>(uses).clock; }
export function usesFreeAt(): usize { return changetype<UseColumns>(uses).freeAt; }
export function usesDiscard(): usize { return changetype<UseColumns>(uses).discard; }
/** Room for `count` serverless-shrink positions (ascending), after usesAllocate; returns where to write them. */
export function usesShrinkAllocate(count: i32): usize {
  changetype<UseColumns>(uses).allocateShrinks(count);
  return changetype<UseColumns>(uses).shrinkAt;
}

/** Makes the policy; with traceAddresses the simulated device takes segment bases from the trace. */
export function start(traceAddresses: i32, timelinePoints: i32): void {
  if (policyKind == POLICY_EXPANDABLE) conf.expandableSegments = true;
  if (policyKind == POLICY_VMS || policyKind == POLICY_LAKEBED || policyKind == POLICY_TIERING) conf.expandableSegments = false;
  const p = makePolicy(changetype<Device>(device));
  policy = p;
  if (events == null) events = new EventColumns(0);
  const ev = changetype<EventColumns>(events);
  if (traceAddresses != 0 && simulated != null) changetype<SimulatedDevice>(simulated).oracle = buildOracle(ev);
  const r = new Replay(p, ev, blockIdCount);
  r.setTimeline(timelinePoints);
  if (uses != null) r.setUses(changetype<UseColumns>(uses));
  replayState = r;
}

/**
 * The policy setup() chose, with the capacity as its per-process limit; for tiering the capacity is
 * the device's size, which it moves pages to the host to stay within instead of failing.
 */
function makePolicy(dev: Device): Policy {
  if (policyKind == POLICY_TIERING) return new TieringPolicy(dev, log, capacity);
  let p: Policy;
  if (policyKind == POLICY_LAKEBED) p = new LakebedPolicy(dev, log, conf);
  else if (policyKind == POLICY_VMS) p = new VmsPolicy(dev, log, conf, vmsConf);
  else {
    // a number the registry (src/policy-registry.ts) gives a policy this module does not make
    assert(policyKind == POLICY_CACHING || policyKind == POLICY_EXPANDABLE, "setup: no policy has this number");
    p = new CachingAllocator(dev, log, conf);
  }
  if (capacity > 0) p.setAllowedMax(capacity);
  return p;
}

@inline function thePolicy(): Policy { return changetype<Policy>(policy); }
@inline function theReplay(): Replay { return changetype<Replay>(replayState); }

export function adoptSegment(address: f64, stream: i32, small: i32, expandable: i32): void {
  thePolicy().adoptSegment(<u64>address, stream, small != 0, expandable != 0);
}

/** state: 0 allocated, 1 pending free, 2 inactive. */
export function adoptBlock(address: f64, size: f64, requested: f64, state: i32, blockId: i32): void {
  const h = thePolicy().adoptBlock(<u64>address, <u64>size, <u64>requested, <u8>state, blockId);
  if (h >= 0) theReplay().adoptHandle(blockId, h);
}

export function adoptDone(): void {
  thePolicy().adoptDone();
}

/**
 * The trace names its empty_cache calls (DeviceTrace.emptyCacheAt), after start: room for `count`
 * event indices (i32, ascending) that the caller writes at the returned address.
 */
export function setEmptyCacheMarks(count: i32): usize {
  return changetype<usize>(theReplay().setEmptyCacheMarks(count));
}

/** Replays events [from, to); -1, or the event after which isValid failed (see brokenInvariant). */
export function replay(from: i32, to: i32, checkEvery: i32): i32 {
  return theReplay().run(from, to, checkEvery);
}

/**
 * Live replays (DEVICE_IMPORTED), after start: fill every allocation with the check pattern and
 * check it before its free (replay.ts). Returns 0, or -1 on a simulated device (nothing to check).
 */
export function setVerifyData(): i32 {
  if (imported == null) return -1;
  theReplay().setVerifyData(changetype<ImportedDevice>(imported));
  return 0;
}
/** The event at which the first changed pattern was found, -1: none. */
export function firstVerifyFailure(): i32 { return theReplay().firstVerifyFailure; }

/** The trace event being replayed (for error messages). */
export function currentEvent(): i32 { return log.currentEvent; }

/**
 * The number of the invariant found broken (INV-CACHE-n), 0 when none: the one a replay's check
 * found, else the policy's whole walk (Policy.brokenInvariant) now.
 */
export function brokenInvariant(): i32 {
  const r = replayState;
  if (r != null && r.brokenInvariant != 0) return r.brokenInvariant;
  return thePolicy().brokenInvariantChecked(true);
}

/**
 * The local level of the policy's check (Policy.brokenLocalInvariant): what changed since the last
 * check, or the whole walk when more changed than the log holds. 0 when it holds.
 */
export function brokenLocalInvariant(): i32 {
  return thePolicy().brokenInvariantChecked(false);
}

/**
 * Local checks on or off, after start: the replay's after every event (replay(from, to,
 * checkEvery) still walks everything every checkEvery events), and the change log they read.
 */
export function setLocalCheck(on: i32): void {
  trackChanges(on != 0);
  theReplay().localCheck = on != 0;
}

// ---- results ------------------------------------------------------------------------------------

export function statCount(): i32 { return STAT_COUNT; }
export function statValue(i: i32): f64 { return <f64>thePolicy().stats.get(i); }
export function replayCounterCount(): i32 { return COUNTERS; }
export function replayCounter(i: i32): f64 { return <f64>theReplay().counters[i]; }
/** The policy's own counter i (Policy.counter; names in src/policy-counters.ts). */
export function policyCounter(i: i32): f64 { return thePolicy().counter(i); }
export function peakReservedEventIndex(): i32 { return theReplay().peakReservedEvent; }
export function firstAddressMismatch(): i32 { return theReplay().firstAddressMismatch; }

export function segmentLogCount(): i32 { return log.count; }
export function segmentLogEventIndex(): usize { return changetype<usize>(log.eventIndex); }
export function segmentLogAction(): usize { return changetype<usize>(log.action); }
export function segmentLogAddr(): usize { return changetype<usize>(log.addr); }
export function segmentLogSize(): usize { return changetype<usize>(log.size); }

export function timelineCount(): i32 { return theReplay().timelineCount; }
export function timelineEvent(): usize { return changetype<usize>(theReplay().timelineEvent); }
export function timelineAllocated(): usize { return changetype<usize>(theReplay().timelineAllocated); }
export function timelineReserved(): usize { return changetype<usize>(theReplay().timelineReserved); }

/** Writes the current layout; returns its segment count (then read the layout columns). */
export function layoutWrite(): i32 {
  thePolicy().writeLayout(layout);
  return layout.segmentCount;
}
export function layoutBlockCount(): i32 { return layout.blockCount; }
export function layoutSegAddress(): usize { return changetype<usize>(layout.segAddress); }
export function layoutSegSize(): usize { return changetype<usize>(layout.segSize); }
export function layoutSegStream(): usize { return changetype<usize>(layout.segStream); }
export function layoutSegSmall(): usize { return changetype<usize>(layout.segSmall); }
export function layoutSegExpandable(): usize { return changetype<usize>(layout.segExpandable); }
export function layoutSegFirstBlock(): usize { return changetype<usize>(layout.segFirstBlock); }
export function layoutSegBlockCount(): usize { return changetype<usize>(layout.segBlockCount); }
export function layoutBlkAddress(): usize { return changetype<usize>(layout.blkAddress); }
export function layoutBlkSize(): usize { return changetype<usize>(layout.blkSize); }
export function layoutBlkRequested(): usize { return changetype<usize>(layout.blkRequested); }
export function layoutBlkState(): usize { return changetype<usize>(layout.blkState); }
export function layoutBlkTraceId(): usize { return changetype<usize>(layout.blkTraceId); }

export function deviceCallKinds(): i32 { return CALL_KINDS; }
/** calls of one kind the simulated device served (0 on an imported device) */
export function deviceCalls(kind: i32): f64 {
  return simulated != null ? <f64>changetype<SimulatedDevice>(simulated).calls[kind] : 0;
}
export function deviceCallBytes(kind: i32): f64 {
  return simulated != null ? <f64>changetype<SimulatedDevice>(simulated).callBytes[kind] : 0;
}
/** simulated microseconds spent in device calls */
export function deviceMicros(): f64 {
  return simulated != null ? changetype<SimulatedDevice>(simulated).micros : 0;
}
/** Simulated device: log every call in order from now on (call-log.ts); -1 on an imported device. */
export function deviceCallLogEnable(): i32 {
  if (simulated == null) return -1;
  changetype<SimulatedDevice>(simulated).callLog = new CallLog();
  return 0;
}
@inline function theCallLog(): CallLog { return changetype<CallLog>(changetype<SimulatedDevice>(simulated).callLog); }
export function deviceCallLogCount(): i32 {
  return simulated != null && changetype<SimulatedDevice>(simulated).callLog != null ? theCallLog().count : 0;
}
export function deviceCallLogKinds(): usize { return changetype<usize>(theCallLog().kinds); }
export function deviceCallLogBytes(): usize { return changetype<usize>(theCallLog().bytes); }
export function devicePeakPhysicalBytes(): f64 {
  return simulated != null ? <f64>changetype<SimulatedDevice>(simulated).peakPhysicalBytes : 0;
}
// The simulated device's host tier (device.ts): arena bytes now and at peak, and the simulated
// microseconds of pinning and of copies each way (bytes copied: deviceCallBytes(CALL_COPY_OUT/IN)).
export function deviceHostBytes(): f64 {
  return simulated != null ? <f64>changetype<SimulatedDevice>(simulated).hostBytes : 0;
}
export function deviceHostPeakBytes(): f64 {
  return simulated != null ? <f64>changetype<SimulatedDevice>(simulated).peakHostBytes : 0;
}
export function deviceHostMicros(): f64 {
  return simulated != null ? changetype<SimulatedDevice>(simulated).hostMicros : 0;
}
export function deviceCopyOutMicros(): f64 {
  return simulated != null ? changetype<SimulatedDevice>(simulated).copyOutMicros : 0;
}
export function deviceCopyInMicros(): f64 {
  return simulated != null ? changetype<SimulatedDevice>(simulated).copyInMicros : 0;
}
// The host tier driven directly, on either device (tests, and hosts that move memory themselves):
// the Device's own calls, with its checks; 1 / 0 for hostReserve's bool.
export function deviceHostReserve(bytes: f64): i32 { return theDevice().hostReserve(<u64>bytes) ? 1 : 0; }
export function deviceCopyOut(va: f64, hostOffset: f64, bytes: f64): void { theDevice().copyOut(<u64>va, <u64>hostOffset, <u64>bytes); }
export function deviceCopyIn(hostOffset: f64, va: f64, bytes: f64): void { theDevice().copyIn(<u64>hostOffset, <u64>va, <u64>bytes); }
export function deviceHostRelease(): void { theDevice().hostRelease(); }
@inline function theDevice(): Device { return changetype<Device>(device); }
/** The cost model's host-tier figures (device/cost-model.ts), for reports: microseconds. */
export function costCopyMicros(kind: i32, bytes: f64): f64 { return copyMicros(kind, <u64>bytes); }
export function costDuplexCopyMicros(outBytes: f64, inBytes: f64): f64 { return duplexCopyMicros(<u64>outBytes, <u64>inBytes); }
export function costPinMicros(bytes: f64): f64 { return pinMicros(<u64>bytes); }
/** One driver call's charge (CALL_* kind; setAccess and unmap per mapping), for hosts that keep their own books (api's colocate pool). */
export function costCallMicros(kind: i32, bytes: f64): f64 { return callMicros(kind, <u64>bytes); }

// ---- driving a policy directly ------------------------------------------------------------------

/** A block for the request, or -1 when out of memory. */
export function policyMalloc(requestBytes: f64, stream: i32): i32 {
  return thePolicy().malloc(<u64>requestBytes, stream);
}
/** free: the request and its completion at once (no other stream used the block). */
export function policyFree(handle: i32): void {
  thePolicy().freeRequest(handle);
  thePolicy().freeComplete(handle);
}
export function policyFreeRequest(handle: i32): void { thePolicy().freeRequest(handle); }
export function policyFreeComplete(handle: i32): void { thePolicy().freeComplete(handle); }
export function policyEmptyCache(): void { thePolicy().emptyCache(); }
export function policyBlockAddress(handle: i32): f64 { return <f64>thePolicy().handleAddress(handle); }
export function policyBlockSize(handle: i32): f64 { return <f64>thePolicy().handleSize(handle); }
/**
 * The driver's address of a live block (its first byte), on an imported device; -1 on a simulated
 * one. What packages/torch hands PyTorch: the policy itself only ever sees model addresses.
 */
export function policyBlockDriverAddress(handle: i32): f64 {
  if (imported == null) return -1;
  const p = thePolicy();
  return changetype<ImportedDevice>(imported).driverAddress(p.handleAddress(handle), max<u64>(p.handleSize(handle), 1));
}
/** The model address of a driver address (ImportedDevice.modelAddress); -1 when none, or on a simulated device. */
export function deviceModelAddress(driverVa: f64): f64 {
  return imported != null ? changetype<ImportedDevice>(imported).modelAddress(driverVa) : -1;
}
// Read-only views for the property harness (test/property/core-sim-adapter.ts): every policy keeps
// its blocks in the block table, so a live handle's request and stream are read from there.
export function policyBlockRequested(handle: i32): f64 { return <f64>bRequested(handle); }
export function policyBlockStream(handle: i32): i32 { return bStream(handle); }
/** set_per_process_memory_fraction at any moment: the limit from now on, in bytes (0: none). */
export function policySetCapacity(capacityBytes: f64): void {
  thePolicy().setAllowedMax(capacityBytes > 0 ? <u64>capacityBytes : UNLIMITED);
}
/** The simulated device's mappings (va, bytes, physical handle), ascending by va; 0 on an imported device. */
export function deviceMappingCount(): i32 {
  return simulated != null ? changetype<SimulatedDevice>(simulated).mappings.count : 0;
}
export function deviceMappingStarts(): usize { return changetype<usize>(changetype<SimulatedDevice>(simulated).mappings.starts); }
export function deviceMappingSizes(): usize { return changetype<usize>(changetype<SimulatedDevice>(simulated).mappings.sizes); }
export function deviceMappingHandles(): usize { return changetype<usize>(changetype<SimulatedDevice>(simulated).mappings.tags); }
/** The simulated device's cudaMalloc'd ranges (va, bytes), ascending by va; 0 on an imported device. */
export function deviceMallocCount(): i32 {
  return simulated != null ? changetype<SimulatedDevice>(simulated).mallocs.count : 0;
}
export function deviceMallocStarts(): usize { return changetype<usize>(changetype<SimulatedDevice>(simulated).mallocs.starts); }
export function deviceMallocSizes(): usize { return changetype<usize>(changetype<SimulatedDevice>(simulated).mallocs.sizes); }

// ---- PyTorch's sizing rules, for tests and tools --------------------------------------------------

/** round_size under the current settings */
export function roundSizeBytes(requestBytes: f64): f64 { return <f64>roundSize(conf, <u64>requestBytes); }
/** 1 when a rounded size goes to the small pool */
export function isSmallBytes(roundedBytes: f64): i32 { return isSmallSize(<u64>roundedBytes) ? 1 : 0; }
/** get_allocation_size under the current settings */
export function allocationSizeBytes(roundedBytes: f64): f64 { return <f64>allocationSize(conf, <u64>roundedBytes); }
/** should_split for a free block of blockBytes serving a rounded request, in the given pool */
export function shouldSplitBytes(blockBytes: f64, roundedBytes: f64, small: i32): i32 {
  return shouldSplitRemainder(conf, small != 0, <u64>blockBytes, <u64>roundedBytes) ? 1 : 0;
}
