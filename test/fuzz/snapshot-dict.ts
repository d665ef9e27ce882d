import { Action, ACTION_NAMES, type BlockState, type SegmentState, type Trace } from "@lakebed/traces";
import { tuple } from "./pickle-writer.js";

/**
 * Turns an imported trace back into the snapshot dictionary PyTorch would have pickled, keeping only
 * the last `lastEvents` entries of each device: exactly what a snapshot whose ring buffer wrapped
 * looks like (the final `segments` are the real ones; the importer must rebuild the state at the
 * first kept entry). This is how fuzz seeds of every format are derived from the real traces,
 * small enough to import thousands of times a second.
 */
const STATE_NAMES: Record<BlockState["state"], string> = {
  allocated: "active_allocated",
  pending_free: "active_pending_free",
  inactive: "inactive",
};

const rawNumber = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);

export function snapshotDictFromTrace(trace: Trace, lastEvents = Infinity): Record<string, unknown> {
  // frames shared by every entry, as PyTorch's deduplicated frames are (pickle memo references)
  const frames = [{ filename: "train.py", line: 42, name: "forward" }, { filename: "torch/nn/modules/module.py", line: 1773, name: "_call_impl" }];
  const maxDevice = trace.devices.reduce((m, d) => Math.max(m, d.device), -1);
  const deviceTraces: unknown[][] = Array.from({ length: maxDevice + 1 }, () => []);
  const segments: unknown[] = [];
  for (const d of trace.devices) {
    const e = d.events;
    const streamRaw = (i: number) => rawNumber(d.streams[i] ?? 0n);
    for (let i = Math.max(0, e.length - lastEvents); i < e.length; i++) {
      const action = e.action[i] as Action;
      const entry: Record<string, unknown> = {
        action: action === Action.Other ? "user_defined" : ACTION_NAMES[action],
        size: e.size[i],
        stream: streamRaw(e.stream[i]),
      };
      if (action === Action.Oom) entry.device_free = e.addr[i];
      else entry.addr = e.addr[i];
      if (!Number.isNaN(e.timeUs[i])) entry.time_us = e.timeUs[i];
      entry.frames = i % 3 === 0 ? frames : [];
      entry.compile_context = "N/A";
      deviceTraces[d.device].push(entry);
    }
    for (const s of d.finalState) segments.push(segmentDict(d.device, s, streamRaw(s.stream)));
  }
  const dict: Record<string, unknown> = { segments, device_traces: deviceTraces };
  if (trace.allocatorSettings) dict.allocator_settings = { ...trace.allocatorSettings.raw };
  if (trace.annotations.length > 0) {
    dict.external_annotations = trace.annotations.map((a) => ({ name: a.name, stage: a.stage, device: a.device, time_us: a.timeUs }));
  }
  return dict;
}

function segmentDict(device: number, s: SegmentState, stream: number | bigint): Record<string, unknown> {
  const active = s.blocks.filter((b) => b.state !== "inactive");
  const sum = (bs: BlockState[], f: (b: BlockState) => number) => bs.reduce((n, b) => n + f(b), 0);
  return {
    device,
    address: s.address,
    total_size: s.totalSize,
    allocated_size: sum(s.blocks.filter((b) => b.state === "allocated"), (b) => b.size),
    active_size: sum(active, (b) => b.size),
    requested_size: sum(active, (b) => b.requestedSize),
    stream,
    segment_type: s.pool,
    segment_pool_id: tuple([0, 0]),
    is_expandable: s.expandable,
    frames: [],
    blocks: s.blocks.map((b) => ({ address: b.address, size: b.size, requested_size: b.requestedSize, state: STATE_NAMES[b.state], frames: [] })),
  };
}
