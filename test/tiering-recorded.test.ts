import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { clockCalibrationBeside, findMinCapacity, loadTrace, replayTrace } from "@lakebed/api";
import { computationClock, shrinkPositions } from "@lakebed/core-sim";
import { lakebed } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * tiering on the recorded access traces (test/fixtures/access): the done-when on the two
 * quickest training recordings (it runs at 0.75 x the smallest capacity the lakebed policy needs
 * without tiering, every use served with its block on the device, the device never above the
 * capacity), the clock the stall estimate reads, and the CLI's refusal without use events.
 */
const access = (name: string) => join(repoRoot, "test/fixtures/access", `${name}.pickle.gz`);

describe("tiering on the recorded access traces", () => {
  for (const name of ["mlp_compiled.def", "llama_lora.exp"]) {
    it(`${name} runs at 0.75 x lakebed's minimum capacity, under both victim choices`, async () => {
      const file = access(name);
      const trace = await loadTrace(file, false, { withAccess: true });
      const lakebedMin = findMinCapacity(trace, { policy: "lakebed" })[0].minCapacityBytes;
      const capacityBytes = Math.floor((0.75 * lakebedMin) / (2 * 1024 * 1024)) * 2 * 1024 * 1024;
      for (const victim of ["online", "belady"]) {
        const { results, document } = replayTrace(trace, { policy: "tiering", conf: `tiering_victim:${victim}`, capacityBytes, clockCalibration: clockCalibrationBeside(file), checkLocal: true });
        const t = document.devices[0].tiering!;
        expect(results[0].failedAllocs, victim).toBe(0);
        expect(t.unservedUses, victim).toBe(0);
        expect(t.usesWithoutAccess, victim).toBe(0);
        expect(t.peakDeviceBytes, victim).toBeLessThanOrEqual(capacityBytes);
        expect(t.bytesIn, `${victim}: the capacity bites`).toBeGreaterThan(0);
        expect(t.stallSeconds, victim).toBeGreaterThan(0);
      }
    });
  }

  it("scales the clock to the plain step time NAME.stats.json measured, from the first operator on", async () => {
    const file = access("gpt2_train.def");
    const trace = await loadTrace(file, false, { withAccess: true });
    const d = trace.devices[0];
    const calibration = clockCalibrationBeside(file)!;
    expect(calibration).toEqual({ stepSeconds: 0.0244, steps: 4 });
    const clock = computationClock(d, d.access!, calibration);
    for (let p = 1; p < clock.length; p++) expect(clock[p]).toBeGreaterThanOrEqual(clock[p - 1]);
    // the model being built, before the first operator: no computation counted
    const ops = d.access!.operators;
    const before = d.events.timeUs.findIndex((t) => t >= ops.startUs[0]);
    expect(before).toBeGreaterThan(0);
    expect(clock[before - 1]).toBe(0);
    // the recorded operators take steps x the plain step, to within the tail after the last one
    expect(clock[d.events.length] / 1e6).toBeGreaterThanOrEqual(4 * 0.0244 * 0.999);
    expect(clock[d.events.length] / 1e6).toBeLessThan(4 * 0.0244 * 1.05);
    // the training steps run back to back: no idle gap of 0.5 ms; between llama_infer's requests there are
    expect(shrinkPositions(d, d.access!, { idleMs: 0.5 }, calibration)).toEqual([]);
    const infer = (await loadTrace(access("llama_infer.def"), false, { withAccess: true })).devices[0];
    expect(shrinkPositions(infer, infer.access!, { idleMs: 5 }, clockCalibrationBeside(access("llama_infer.def"))).length).toBeGreaterThan(0);
  });

  it("refuses a tiering replay of a trace without use events in one line, saying how to record one", () => {
    const r = lakebed(["replay", join(repoRoot, "samples/two_streams.def.pickle.gz"), "--policy", "tiering", "--capacity", "1GiB"]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/two_streams\.def\.pickle\.gz: policy tiering needs a trace with use events .* python\/lakebed_record\.py/);
  });
});
