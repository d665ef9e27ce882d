import { existsSync, readFileSync } from "node:fs";
import { recorderOperatorOverheadUs } from "@lakebed/core-sim";

/**
 * Host µs the recorder added to each operator of a recording, from the NAME.stats.json that
 * scripts/record-access/run.sh writes beside NAME.pickle.gz (its `overhead` and `operators`); 0 when
 * there is none (the clock is then taken as recorded, and docs/policies.md says what that costs).
 */
export function recorderOverheadBeside(file: string): number {
  const stats = file.replace(/\.(pickle(\.gz)?|json(\.gz)?|arrow)$/, "") + ".stats.json";
  if (stats === file || !existsSync(stats)) return 0;
  try {
    const s = JSON.parse(readFileSync(stats, "utf8"));
    const median = s?.overhead?.median_step_seconds;
    if (!median || typeof median.recorder !== "number" || typeof median.history !== "number") return 0;
    return recorderOperatorOverheadUs({
      historyStepSeconds: median.history,
      recorderStepSeconds: median.recorder,
      operators: Number(s.operators) || 0,
      steps: Number(s.recorded_steps) || 1,
    });
  } catch {
    return 0;
  }
}
