/**
 * Turns what a reader decoded (event columns by device, plus the snapshot's segments, settings and
 * annotations as plain values) into the Trace model: streams renumbered, final and initial states,
 * block identities, completeness. Pickle and JSON input share it; Arrow input carries the result.
 */
import type { Annotation, DeviceTrace, EventColumns, SegmentState, Trace, TraceFormat } from "./model.js";
import type { RawDeviceEvents } from "./column-builder.js";
import { readSegments, type RawSegment } from "./snapshot-segments.js";
import { readAllocatorSettings, withRecordedSettings } from "./settings.js";
import { isRecord } from "./decoded-values.js";
import { buildStreamTable, renumberStreamColumn } from "./streams.js";
import { rebuildInitialState } from "./initial-state.js";
import { assignBlockIds } from "./block-ids.js";
import { blockIdsFromEmptyStart } from "./empty-start.js";
import { privatePoolUse } from "./private-pools.js";
import { deviceOrdinalProblem, freeOrderProblem, sizeProblem, streamProblem, type EventProblem } from "./event-checks.js";
import { TraceError } from "./trace-error.js";

export interface DecodedSnapshot {
  file: string;
  format: TraceFormat;
  gzip: boolean;
  /** the `segments` value, or the whole input when it is a bare segments list */
  segments: unknown;
  events: RawDeviceEvents[];
  allocatorSettings: unknown;
  annotations: unknown;
}

export function assembleTrace(decoded: DecodedSnapshot): Trace {
  const { file } = decoded;
  const allocatorSettings = readAllocatorSettings(decoded.allocatorSettings, file);
  const { segments, legacy } = readSegments(decoded.segments, file);
  const ordinals = new Set<number>();
  for (const e of decoded.events) if (e.length > 0) ordinals.add(e.device);
  for (const s of segments) ordinals.add(s.device);
  function assembleDevice(device: number): DeviceTrace {
    // what no policy can be asked to do is refused before anything is built on it (event-checks.ts)
    const refuse = (problem: EventProblem | null) => {
      if (problem !== null) throw new TraceError(file, problem.detail, { device, eventIndex: problem.eventIndex });
    };
    refuse(deviceOrdinalProblem(device));
    const raw = decoded.events.find((e) => e.device === device) ?? emptyEvents(device);
    const deviceSegments = segments.filter((s) => s.device === device).sort((a, b) => a.address - b.address);
    const table = buildStreamTable([...raw.rawStreams, ...deviceSegments.map((s) => s.rawStream)]);
    renumberStreamColumn(raw.stream, raw.rawStreams, table);
    refuse(streamProblem(table.streams, raw));
    const finalState = deviceSegments.map((s) => toSegmentState(s, table.indexOf(s.rawStream)));
    refuse(sizeProblem(raw, finalState));
    const privatePools = privatePoolUse(deviceSegments);
    const columns = { length: raw.length, action: raw.action, addr: raw.addr, size: raw.size, stream: raw.stream, timeUs: raw.timeUs };
    const provenComplete = blockIdsFromEmptyStart(columns, finalState);
    if (provenComplete !== null) {
      const events: EventColumns = { ...columns, blockId: provenComplete };
      refuse(freeOrderProblem(events, []));
      return { device, events, streams: table.streams, initialState: [], finalState, complete: true, initialLiveBlocks: 0, privatePools };
    }
    const initialState = rebuildInitialState(finalState, columns, { file, device, settings: allocatorSettings });
    const { blockId, initialLiveBlocks } = assignBlockIds(columns, initialState, finalState, { file, device });
    const events: EventColumns = { ...columns, blockId };
    refuse(freeOrderProblem(events, initialState));
    return { device, events, streams: table.streams, initialState, finalState, complete: initialState.length === 0, initialLiveBlocks, privatePools };
  }
  const devices = [...ordinals].sort((a, b) => a - b).map((device): DeviceTrace => withRecordedSettings(assembleDevice(device), allocatorSettings, file));
  return {
    file,
    format: decoded.format,
    gzip: decoded.gzip,
    allocatorSettings,
    devices,
    legacy,
    annotations: readAnnotations(decoded.annotations),
  };
}

function emptyEvents(device: number): RawDeviceEvents {
  return {
    device,
    length: 0,
    action: new Uint8Array(0),
    addr: new Float64Array(0),
    size: new Float64Array(0),
    stream: new Uint32Array(0),
    timeUs: new Float64Array(0),
    rawStreams: [],
  };
}

function toSegmentState(s: RawSegment, stream: number): SegmentState {
  return {
    address: s.address,
    totalSize: s.totalSize,
    stream,
    pool: s.pool,
    expandable: s.expandable,
    blocks: s.blocks.map((b) => ({ ...b, blockId: -1 })),
  };
}

/** `external_annotations` are display-only: malformed entries are dropped rather than failing the import. */
function readAnnotations(value: unknown): Annotation[] {
  if (!Array.isArray(value)) return [];
  const out: Annotation[] = [];
  for (const a of value) {
    if (!isRecord(a) || (a.stage !== "START" && a.stage !== "END") || typeof a.name !== "string") continue;
    out.push({
      name: a.name,
      stage: a.stage,
      device: typeof a.device === "number" ? a.device : 0,
      timeUs: typeof a.time_us === "number" ? a.time_us : typeof a.time_us === "bigint" ? Number(a.time_us) : NaN,
    });
  }
  return out;
}
