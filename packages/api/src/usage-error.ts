/**
 * A command line that cannot be run as given: an unknown option value, a malformed size or
 * settings string, flags that do not go together, an output that would overwrite the input. The CLI
 * prints its message as one line and exits with status 2 (README: "usage errors exit with 2"); bad
 * input files are TraceErrors and exit 1.
 */
import { printable } from "./terminal-text.js";

export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The longest part of a value an error line quotes: a 100,000-character --conf is not echoed whole. */
const QUOTED_CHARS = 60;

/** `value` as an error line quotes it: escaped for the terminal and cut to QUOTED_CHARS characters. */
export function quoted(value: string): string {
  const cut = value.length > QUOTED_CHARS ? `${value.slice(0, QUOTED_CHARS)}... (${value.length} characters)` : value;
  return `'${printable(cut)}'`;
}
