import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { confFromSettings, replayDevice } from "@lakebed/core-sim";
import { Action } from "@lakebed/traces";
import { haveSharedTraces, recordedTraces, sharedTraces } from "../../../test/support/shared-traces.js";
import { comparableLayout, emulatedSegmentEvents, loadTrace, recorded, traceSegmentEvents } from "./support/traces.js";
import { CHECK_EVERY_EVENT } from "./support/policy-traces.js";

/**
 * The ground truth: every trace recorded for the project, replayed from an empty allocator with the
 * settings PyTorch recorded (and, for lora_capped.cap145, its per-process limit), reproduces every
 * statistic PyTorch itself reported at the end of the run, PyTorch's own segment events (same
 * order, address and size), and the final segment and block layout of the snapshot.
 */
describe.skipIf(!haveSharedTraces)("recorded traces replay exactly", () => {
  for (const t of recordedTraces()) {
    it(t.name, async () => {
      const trace = await loadTrace(t.file);
      expect(trace.devices).toHaveLength(1);
      const [device] = trace.devices;
      const conf = confFromSettings(trace.allocatorSettings);
      const result = replayDevice(device, {
        policy: conf.expandableSegments ? "expandable" : "caching",
        conf,
        capacityBytes: t.capacityBytes,
      });

      const emulated = Object.fromEntries(Object.keys(t.stats).map((k) => [k, result.stats[k]]));
      expect(emulated).toEqual(t.stats);
      expect(emulatedSegmentEvents(result)).toEqual(traceSegmentEvents(device));
      expect(comparableLayout(result.finalSegments)).toEqual(comparableLayout(device.finalState));
      expect(result.failedAllocs).toBe(0);
      // every allocation lands at the address PyTorch gave it
      expect(result.addressMismatches).toBe(0);
      expect(result.peakReservedBytes).toBe(t.stats["reserved_bytes.all.peak"]);
      expect(result.peakAllocatedBytes).toBe(t.stats["allocated_bytes.all.peak"]);
    });
  }

  it("segment events happen at the request PyTorch made them for", async () => {
    const trace = await loadTrace(recorded("gpt2_emptycache.def").file);
    const [device] = trace.devices;
    const result = replayDevice(device, { policy: "caching", conf: confFromSettings(trace.allocatorSettings) });
    // the emulator logs a segment event while serving the trace event that caused it: a
    // segment_alloc just before its alloc, an empty_cache burst at its first segment_free
    const requestsBefore = new Uint32Array(device.events.length + 1);
    for (let i = 0, n = 0; i < device.events.length; i++) {
      requestsBefore[i] = n;
      if (device.events.action[i] === Action.Alloc || device.events.action[i] === Action.Oom) n++;
    }
    const traceRequests: number[] = [];
    for (let i = 0; i < device.events.length; i++) {
      const a = device.events.action[i];
      if (a >= 4 && a <= 7) traceRequests.push(requestsBefore[i]);
    }
    const emulatorRequests = result.segmentEvents.map((e) => requestsBefore[e.eventIndex]);
    expect(emulatorRequests).toEqual(traceRequests);
    expect(result.emptyCacheCalls).toBe(3);
  });
});

/**
 * Snapshots from public repositories: most were recorded mid-run (the replay starts from the
 * state rebuilt from the snapshot), on other GPUs and PyTorch versions.
 */
describe.skipIf(!haveSharedTraces)("public traces replay exactly", () => {
  const cases: { file: string }[] = [
    { file: "public/cs336.ctx128_fullstep.pickle" },
    { file: "public/ftcourse.lora_2024.pickle" },
    { file: "public/silmont.forward_bf16_128.pickle" },
    { file: "public/assignment2.medium_1024_inference.pickle" },
    // Its rebuilt initial state needs a live block's unsplit tail folded back in (at event 179 an
    // 8 MiB alloc lands 983,040 bytes past the 4 MiB block before it; traces/initial-state.ts).
    { file: "public/assignment2.medium_512_training.pickle" },
    // three GPUs with a little less memory than an H100: their expandable reservations are smaller,
    // which the replay reads back from where the second reservation starts (device-total.ts); it
    // holds segment_unmap bursts and an oom
    { file: "public/code_location.expandable_oom.pickle" },
  ];
  for (const c of cases) {
    it(c.file, async () => {
      const trace = await loadTrace(join(sharedTraces, c.file));
      const conf = confFromSettings(trace.allocatorSettings);
      for (const device of trace.devices) {
        const result = replayDevice(device, {
          policy: conf.expandableSegments ? "expandable" : "caching",
          conf,
          ...CHECK_EVERY_EVENT,
        });
        expect(emulatedSegmentEvents(result)).toEqual(traceSegmentEvents(device));
        expect(result.failedAllocs).toBe(0);
        expect(result.unexpectedOomSuccesses).toBe(0);
        expect(result.addressMismatches).toBe(0);
        expect(comparableLayout(result.finalSegments)).toEqual(comparableLayout(device.finalState));
      }
    });
  }
});
