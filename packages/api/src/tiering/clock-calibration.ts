import { existsSync, readFileSync } from "node:fs";
import type { ClockCalibration } from "@lakebed/core-sim";

/**
 * The step time a recording measured without the recorder, from the NAME.stats.json that
 * scripts/record-access/run.sh writes beside NAME.pickle.gz (the median plain step of its
 * `overhead`, and `recorded_steps`): the stall estimate's clock is scaled to it (core-sim's
 * use-clock.ts says why). Undefined when there is none: the clock is then taken as recorded.
 */
export function clockCalibrationBeside(file: string): ClockCalibration | undefined {
  const stats = file.replace(/\.(pickle(\.gz)?|json(\.gz)?|arrow)$/, "") + ".stats.json";
  if (stats === file || !existsSync(stats)) return undefined;
  try {
    const s = JSON.parse(readFileSync(stats, "utf8"));
    const stepSeconds = s?.overhead?.median_step_seconds?.plain;
    const steps = Number(s?.recorded_steps);
    if (typeof stepSeconds !== "number" || !(stepSeconds > 0) || !(steps > 0)) return undefined;
    return { stepSeconds, steps };
  } catch {
    return undefined;
  }
}
