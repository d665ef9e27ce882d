import { Action, ACTION_NAMES, type DeviceTrace, type SegmentState, type Trace } from "@lakebed/traces";
import { policyEntry, type DeviceReplayResult } from "@lakebed/core-sim";
import { allocationEvents } from "./describe.js";
import { recordedPolicy, replayTrace, resolvePolicy, type PolicyName, type ReplayRequest } from "./replay.js";
import { privatePoolCaveat } from "./caveats.js";

/**
 * `lakebed verify`: replay a trace with the settings PyTorch recorded and compare what the emulator
 * did at the device level (segment_alloc/free, segment_map/unmap) with what PyTorch did, event by
 * event, then compare the final segment and block layout with the snapshot's.
 *
 * Under which policy: replay's own choice (replay.ts's resolvePolicy): request.policy, else the one
 * the snapshot names (liblakebed_torch writes allocator_settings' `lakebed_policy`: a snapshot
 * recorded under policy P is checked against P's own segment events), else PyTorch's allocator
 * (caching; expandable where the recorded settings turn expandable_segments on).
 *
 * Device-level events are compared by (action, address, bytes) and by how many allocation requests
 * came before them: PyTorch logs a segment_alloc just before the alloc that caused it, while the
 * emulator logs it while serving that alloc, so trace positions differ by design but the number of
 * requests served before each segment event must not.
 */
export interface SegmentEventView {
  /** index of the trace entry (for the trace) or of the trace entry being served (for the emulator) */
  eventIndex: number;
  action: string;
  addr: number;
  size: number;
  /** allocation requests (alloc and oom entries) before this event */
  requestsBefore: number;
}

export interface SegmentMismatch {
  /** position in the sequence of segment events (0 = the first segment event) */
  position: number;
  expected: SegmentEventView | null;
  actual: SegmentEventView | null;
}

export interface DeviceVerifyDocument {
  device: number;
  segmentEventsCompared: number;
  firstMismatch: SegmentMismatch | null;
  finalStateMatches: boolean;
  /** the first difference in the final layout, in words; null when it matches */
  finalStateDifference: string | null;
  /** whether the trace started from an empty allocator (else the replay began from a rebuilt state) */
  complete: boolean;
}

export interface VerifyDocument {
  match: boolean;
  /** why the trace cannot be verified, when it cannot */
  reason?: string;
  /** the policy whose segment events were compared (--policy, else the snapshot's lakebed_policy, else caching or expandable) */
  policy?: string;
  /** the policy the snapshot says it was recorded under (liblakebed_torch's snapshots), when it names one */
  recordedPolicy?: string;
  devices: DeviceVerifyDocument[];
}

const SEGMENT_ACTIONS = new Set<number>([Action.SegmentAlloc, Action.SegmentFree, Action.SegmentMap, Action.SegmentUnmap]);

export function verifyTrace(trace: Trace, request: Pick<ReplayRequest, "policy" | "capacityBytes" | "onProgress" | "checkEvery"> = {}): VerifyDocument {
  const unverifiable = whyUnverifiable(trace);
  if (unverifiable) return { match: false, reason: unverifiable, devices: [] };
  const recorded = recordedPolicy(trace);
  const { policy } = resolvePolicy(trace, request);
  const afresh = startsAfresh(trace, policy);
  if (afresh) return { match: false, reason: afresh, policy, ...(recorded ? { recordedPolicy: recorded } : {}), devices: [] };
  const { document, results } = replayTrace(trace, { ...request, traceAddresses: true });
  const devices = trace.devices.map((d, i) => compareDevice(d, results[i], recorded !== undefined));
  const match = devices.every((d) => d.firstMismatch === null && d.finalStateMatches);
  // A divergence in a trace with private pools is expected, not an emulation error: say why.
  const caveat = match ? null : privatePoolCaveat(trace);
  return { match, ...(caveat === null ? {} : { reason: caveat }), policy: document.policy, ...(recorded ? { recordedPolicy: recorded } : {}), devices };
}

/**
 * A trace recorded mid-run under a policy that does not rebuild the recorded layout (vms, lakebed:
 * core-sim's start-state-prologue.ts allocates the start's live blocks afresh and drops the cache)
 * cannot be compared event by event: the replay's start lies elsewhere, and every later address
 * with it. Said as the reason, rather than a mismatch that is no emulation error.
 */
function startsAfresh(trace: Trace, policy: PolicyName): string | null {
  const midRun = trace.devices.filter((d) => d.initialState.length > 0);
  if (midRun.length === 0 || policyEntry(policy).rebuildsRecordedLayout === true) return null;
  return (
    `the trace starts mid-run (device ${midRun.map((d) => d.device).join(", ")}: a wrapped trace or a snapshot taken after ` +
    `the first allocations) and ${policy} allocates that start state afresh, elsewhere than the recording, so its events ` +
    `cannot be compared one by one; \`lakebed replay --policy ${policy}\` gives its peaks`
  );
}

function whyUnverifiable(trace: Trace): string | null {
  if (trace.devices.length === 0) return "the file holds no device with segments or trace entries";
  if (trace.legacy) {
    return "legacy PyTorch 2.0 snapshot: it holds the allocator state but no trace of allocation events (its trace is a single 'snapshot' entry), so there is nothing to replay";
  }
  if (trace.devices.every((d) => allocationEvents(d) === 0)) {
    return "the snapshot holds allocator state but no allocation events (recorded with _record_memory_history(enabled='state') or without a trace), so there is nothing to replay";
  }
  return null;
}

/**
 * library: the trace is liblakebed_torch's, whose segment events are the driver calls the policy
 * made (cudaMalloc: segment_alloc, a map: segment_map, one segment_unmap per map an unmap cuts), in
 * the policy's address space, where the emulator logs the policy's own segments (vms: a stitched
 * range is a segment_alloc). Both are then compared as memory taken and given back per request
 * (takenAndGivenBack); the final layouts, as the live blocks (address, size, state, request).
 */
export function compareDevice(trace: DeviceTrace, result: DeviceReplayResult, library = false): DeviceVerifyDocument {
  const requestsBefore = requestCounter(trace);
  let expected: SegmentEventView[] = [];
  for (let i = 0; i < trace.events.length; i++) {
    const action = trace.events.action[i];
    if (!SEGMENT_ACTIONS.has(action)) continue;
    expected.push({
      eventIndex: i,
      action: ACTION_NAMES[action as Action],
      addr: trace.events.addr[i],
      size: trace.events.size[i],
      requestsBefore: requestsBefore[i],
    });
  }
  let actual: SegmentEventView[] = result.segmentEvents.map((e) => ({
    eventIndex: e.eventIndex,
    action: ACTION_NAMES[e.action as Action],
    addr: e.addr,
    size: e.size,
    requestsBefore: e.eventIndex < requestsBefore.length ? requestsBefore[e.eventIndex] : requestsBefore[requestsBefore.length - 1] ?? 0,
  }));
  if (library) {
    expected = takenAndGivenBack(expected);
    actual = takenAndGivenBack(actual);
  }
  let firstMismatch: SegmentMismatch | null = null;
  const n = Math.max(expected.length, actual.length);
  for (let k = 0; k < n; k++) {
    const e = expected[k] ?? null;
    const a = actual[k] ?? null;
    if (e && a && sameSegmentEvent(e, a)) continue;
    firstMismatch = { position: k, expected: e, actual: a };
    break;
  }
  const finalStateDifference = library ? compareHeld(trace.finalState, result.finalSegments) : compareLayouts(trace.finalState, result.finalSegments);
  return {
    device: trace.device,
    segmentEventsCompared: firstMismatch ? firstMismatch.position : n,
    firstMismatch,
    finalStateMatches: finalStateDifference === null,
    finalStateDifference,
    complete: trace.complete,
  };
}

/**
 * The events as memory taken ("take") and given back ("give back") per request (compareDevice's
 * library): within the calls made before one request is served, the ranges given back, then those
 * taken, each in address order with side-by-side ranges joined. The order inside one request is the
 * recorder's (the library writes each driver call as made, a chunk move's map before its unmap; the
 * emulator's log may name the unmap first); what the request left mapped is the same either way.
 */
export function takenAndGivenBack(events: SegmentEventView[]): SegmentEventView[] {
  const out: SegmentEventView[] = [];
  for (let i = 0; i < events.length; ) {
    let j = i;
    while (j < events.length && events[j].requestsBefore === events[i].requestsBefore) j++;
    const group = events.slice(i, j).map((e) => ({ ...e, action: e.action === "segment_alloc" || e.action === "segment_map" ? "take" : "give back" }));
    for (const action of ["give back", "take"]) {
      let last: SegmentEventView | undefined;
      for (const e of group.filter((g) => g.action === action).sort((a, b) => a.addr - b.addr)) {
        if (last && last.addr + last.size === e.addr) {
          last.size += e.size;
          continue;
        }
        last = { ...e, eventIndex: events[i].eventIndex };
        out.push(last);
      }
    }
    i = j;
  }
  return out;
}

/**
 * compareLayouts for a library trace: the live blocks (its segments are the driver's mapped ranges,
 * aliases included where vms stitches, the emulator's the policy's own segments; what each took and
 * gave back is the segment events' to compare).
 */
export function compareHeld(expected: SegmentState[], actual: SegmentState[]): string | null {
  const live = (segs: SegmentState[]) => segs.flatMap((s) => s.blocks.filter((b) => b.state !== "inactive")).sort((a, b) => a.address - b.address);
  const want = live(expected);
  const got = live(actual);
  for (let j = 0; j < Math.max(want.length, got.length); j++) {
    const w = want[j];
    const g = got[j];
    if (!w) return `the emulator has an extra live block at ${hex(g.address)} (${g.size} bytes)`;
    if (!g) return `the emulator lacks the live block at ${hex(w.address)} (${w.size} bytes)`;
    if (w.address !== g.address || w.size !== g.size || w.state !== g.state || w.requestedSize !== g.requestedSize) {
      return `live block ${j}: snapshot ${hex(w.address)} ${w.size} bytes ${w.state} (requested ${w.requestedSize}), emulator ${hex(g.address)} ${g.size} bytes ${g.state} (requested ${g.requestedSize})`;
    }
  }
  return null;
}

function sameSegmentEvent(e: SegmentEventView, a: SegmentEventView): boolean {
  return e.action === a.action && e.addr === a.addr && e.size === a.size && e.requestsBefore === a.requestsBefore;
}

/** requestsBefore[i] = number of alloc and oom entries strictly before entry i. */
function requestCounter(trace: DeviceTrace): Uint32Array {
  const counts = new Uint32Array(trace.events.length + 1);
  let n = 0;
  for (let i = 0; i < trace.events.length; i++) {
    counts[i] = n;
    const a = trace.events.action[i];
    if (a === Action.Alloc || a === Action.Oom) n++;
  }
  counts[trace.events.length] = n;
  return counts;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** Returns the first difference between two layouts in words, or null when they are the same. */
export function compareLayouts(expected: SegmentState[], actual: SegmentState[]): string | null {
  const byAddress = (a: SegmentState, b: SegmentState) => a.address - b.address;
  const want = [...expected].sort(byAddress);
  const got = [...actual].sort(byAddress);
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    const w = want[i];
    const g = got[i];
    if (!w) return `the emulator has an extra segment at ${hex(g.address)} (${g.totalSize} bytes)`;
    if (!g) return `the emulator lacks the segment at ${hex(w.address)} (${w.totalSize} bytes)`;
    if (w.address !== g.address || w.totalSize !== g.totalSize) {
      return `segment ${i}: snapshot has ${hex(w.address)} (${w.totalSize} bytes), emulator ${hex(g.address)} (${g.totalSize} bytes)`;
    }
    if (w.pool !== g.pool || w.expandable !== g.expandable || w.stream !== g.stream) {
      return `segment ${hex(w.address)}: snapshot pool ${w.pool}/stream ${w.stream}/expandable ${w.expandable}, emulator ${g.pool}/${g.stream}/${g.expandable}`;
    }
    for (let j = 0; j < Math.max(w.blocks.length, g.blocks.length); j++) {
      const wb = w.blocks[j];
      const gb = g.blocks[j];
      if (!wb || !gb) return `segment ${hex(w.address)}: snapshot has ${w.blocks.length} blocks, emulator ${g.blocks.length}`;
      if (wb.address !== gb.address || wb.size !== gb.size || wb.state !== gb.state) {
        return `segment ${hex(w.address)} block ${j}: snapshot ${hex(wb.address)} ${wb.size} bytes ${wb.state}, emulator ${hex(gb.address)} ${gb.size} bytes ${gb.state}`;
      }
      if (wb.state !== "inactive" && wb.requestedSize !== gb.requestedSize) {
        return `block ${hex(wb.address)}: snapshot requested ${wb.requestedSize} bytes, emulator ${gb.requestedSize}`;
      }
    }
  }
  return null;
}
