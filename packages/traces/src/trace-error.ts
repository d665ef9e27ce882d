/**
 * The one error type for bad input. Its message is a single line that names the file and, where the
 * problem is in a trace entry, the device and the entry's index, then what was expected:
 *
 *   lakebed: trace.pickle: device 0, event 1234: free of address 0x7f00 that was never allocated
 *
 * The CLI prints `message` and exits non-zero; it never prints a stack for a TraceError.
 */
export class TraceError extends Error {
  override readonly name = "TraceError";

  constructor(
    readonly file: string,
    readonly detail: string,
    readonly where: { device?: number; eventIndex?: number; byteOffset?: number } = {},
  ) {
    super(formatTraceError(file, detail, where));
  }
}

function formatTraceError(
  file: string,
  detail: string,
  where: { device?: number; eventIndex?: number; byteOffset?: number },
): string {
  const parts = [file];
  if (where.device !== undefined) parts.push(`device ${where.device}`);
  if (where.eventIndex !== undefined) parts.push(`event ${where.eventIndex}`);
  if (where.byteOffset !== undefined) parts.push(`byte ${where.byteOffset}`);
  return `${parts.join(": ")}: ${detail}`.replace(/\s*\n\s*/g, " ");
}
