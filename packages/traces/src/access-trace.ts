/**
 * A snapshot read together with the operator record written beside it (python/lakebed_record.py):
 * the Trace with each device's use events. The snapshot is read as any other (readTrace); the record
 * is joined to it (access-join.ts), and the join is checked against the model's invariants.
 */
import { existsSync } from "node:fs";
import type { Trace } from "./model.js";
import { readTrace, type ReadTraceOptions } from "./read-trace.js";
import { readAccessRecord } from "./access-record.js";
import { joinAccessRecord } from "./access-join.js";
import { checkAccessColumns } from "./access-valid.js";
import { TraceError } from "./trace-error.js";

export async function readAccessTrace(tracePath: string, accessPath: string, opts: ReadTraceOptions = {}): Promise<Trace> {
  const trace = await readTrace(tracePath, opts);
  return withAccessRecord(trace, accessPath);
}

/** `trace` with the use events of the record at `accessPath`. */
export function withAccessRecord(trace: Trace, accessPath: string): Trace {
  const joined = joinAccessRecord(trace, readAccessRecord(accessPath));
  for (const d of joined.devices) {
    const problem = d.access === undefined ? null : checkAccessColumns(d, d.access);
    // the join holds the invariants by construction: a violation is lakebed's bug, said with both files
    if (problem !== null) throw new TraceError(accessPath, `joining it to ${trace.file} broke the trace model: ${problem}`, { device: d.device });
  }
  return joined;
}

const SNAPSHOT_SUFFIX = /\.(pickle|pkl|json)(\.gz)?$/;

/**
 * The operator record the recorder wrote beside a snapshot (NAME.pickle.gz -> NAME.access.json.gz,
 * or .access.json), or null when there is none. An Arrow trace carries its use events inside.
 */
export function accessRecordBeside(tracePath: string): string | null {
  if (!SNAPSHOT_SUFFIX.test(tracePath)) return null;
  const base = tracePath.replace(SNAPSHOT_SUFFIX, "");
  for (const candidate of [`${base}.access.json.gz`, `${base}.access.json`]) if (existsSync(candidate)) return candidate;
  return null;
}
