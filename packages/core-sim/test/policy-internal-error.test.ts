import { describe, expect, it } from "vitest";
import { confFromSettings, POLICY_NAMES, PolicyInternalError, replayDevice } from "@lakebed/core-sim";
import { Action, parseTrace } from "@lakebed/traces";

/**
 * A policy that stops inside the WebAssembly (a trap or one of its assertions) is a bug in lakebed,
 * never bad input (the importer refuses what a policy cannot serve): the replay throws a
 * PolicyInternalError that carries the event index and gives the one line a user sees, naming file,
 * device and event and asking for a report. The importer cannot produce such a trace, so this one is
 * imported valid and then damaged in memory: its first block freed three times.
 */
const MiB = 1024 * 1024;

function damagedTrace() {
  const entry = (action: string, size: number) => ({ action, addr: 2 * MiB, size, stream: 0, time_us: 1, frames: [] });
  const snapshot = {
    segments: [],
    device_traces: [[entry("segment_alloc", 2 * MiB), entry("alloc", 512), entry("free_requested", 512), entry("free_completed", 512), entry("alloc", 512), entry("free_requested", 512), entry("free_completed", 512), entry("segment_free", 2 * MiB)]],
  };
  const device = parseTrace(new TextEncoder().encode(JSON.stringify(snapshot)), "double-free.json").devices[0];
  const { action, blockId } = device.events;
  for (const i of [3, 4]) {
    action[i] = Action.FreeRequested;
    blockId[i] = blockId[2];
  }
  return device;
}

describe("a policy's internal error", () => {
  for (const policy of POLICY_NAMES) {
    it(`${policy}: a PolicyInternalError at the event, whose line names file, device and event`, () => {
      let error: unknown;
      try {
        replayDevice(damagedTrace(), { policy, conf: confFromSettings(null) });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(PolicyInternalError);
      const internal = error as PolicyInternalError;
      expect(internal.eventIndex).toBe(3);
      expect(internal.detail).toContain("free of a block that is not allocated");
      const line = internal.lineFor("double-free.json", 0);
      expect(line).toMatch(new RegExp(`^double-free\\.json: device 0: event 3: internal error in the ${policy} policy \\(free of a block that is not allocated .*\\); please report it, with this trace file$`));
      expect(line).not.toContain("\n");
    });
  }
});
