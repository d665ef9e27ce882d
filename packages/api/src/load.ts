import { accessRecordBeside, readTrace, withAccessRecord, type Trace } from "@lakebed/traces";
import { startProgress } from "./progress.js";
import { importLimits } from "./import-limits-option.js";

/**
 * Reads a trace file with a progress bar on stderr (when it is a terminal and the file is large).
 * With `withAccess`, the operator record the recorder wrote beside a snapshot (NAME.access.json.gz,
 * python/lakebed_record.py) is joined to it as use events; an Arrow trace carries its own.
 */
export async function loadTrace(file: string, showProgress = true, options: { withAccess?: boolean } = {}): Promise<Trace> {
  const progress = startProgress("import", "bytes", showProgress);
  let trace: Trace;
  try {
    trace = await readTrace(file, { onProgress: (done, total) => progress.update(done, total), limits: importLimits() });
  } finally {
    progress.stop();
  }
  const record = options.withAccess ? accessRecordBeside(file) : null;
  return record === null ? trace : withAccessRecord(trace, record);
}
