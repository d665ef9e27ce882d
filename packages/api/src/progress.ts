import { createRequire } from "node:module";
import type * as CliProgress from "cli-progress";

/**
 * Progress on stderr for long imports and replays. It draws only when stderr is a terminal, so
 * `--json` output, pipes and CI logs stay clean; stdout is never touched.
 */
export interface Progress {
  /** a callback for importers and replays: done and total in the stage's own unit */
  update(done: number, total: number): void;
  stop(): void;
}

const QUIET: Progress = { update() {}, stop() {} };

/** cli-progress, required only where a bar may be drawn (stderr a terminal): pipes and CI never load it. */
let loaded: typeof CliProgress | undefined;
function cliProgress(): typeof CliProgress {
  loaded ??= createRequire(import.meta.url)("cli-progress") as typeof CliProgress;
  return loaded;
}

/** Work shorter than this never shows a bar: a flash of a bar is noise. */
const SHOW_AFTER_MS = 300;

export function startProgress(stage: string, unit: "bytes" | "events" | "replays" | "simulated ms", enabled = true): Progress {
  if (!enabled || !process.stderr.isTTY) return QUIET;
  const started = Date.now();
  let bar: CliProgress.SingleBar | null = null;
  const format =
    unit === "bytes"
      ? `${stage} [{bar}] {percentage}% | {value_mib}/{total_mib} MiB | {eta_formatted}`
      : `${stage} [{bar}] {percentage}% | {value}/{total} ${unit} | {eta_formatted}`;
  return {
    update(done, total) {
      if (bar === null) {
        if (Date.now() - started < SHOW_AFTER_MS || done >= total) return;
        const { SingleBar, Presets } = cliProgress();
        bar = new SingleBar(
          { format, stream: process.stderr, hideCursor: true, clearOnComplete: true, etaBuffer: 50 },
          Presets.shades_classic,
        );
        bar.start(total, done, mib(0, total));
      }
      bar.setTotal(total);
      bar.update(done, mib(done, total));
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

function mib(done: number, total: number) {
  return { value_mib: (done / 2 ** 20).toFixed(1), total_mib: (total / 2 ** 20).toFixed(1) };
}
