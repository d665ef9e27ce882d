import { readTrace, type Trace } from "@lakebed/traces";
import { startProgress } from "./progress.js";
import { importLimits } from "./import-limits-option.js";

/** Reads a trace file with a progress bar on stderr (when it is a terminal and the file is large). */
export async function loadTrace(file: string, showProgress = true): Promise<Trace> {
  const progress = startProgress("import", "bytes", showProgress);
  try {
    return await readTrace(file, { onProgress: (done, total) => progress.update(done, total), limits: importLimits() });
  } finally {
    progress.stop();
  }
}
