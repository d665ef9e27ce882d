/**
 * `--limits key:value,...`: the importer's stated limits (@lakebed/traces import-limits.ts) for the
 * traces this process reads. A refusal names the key to raise ("raise it with --limits streams:N").
 *
 * The CLI checks the option before the command runs and hands it on in the environment, as
 * LAKEBED_LIMITS (a user may set that variable too): the CLI loads this module on demand, the
 * commands through loadTrace, and a bundler may give each its own copy of a module, so a module
 * variable set by one copy was not seen by the other (the option was ignored).
 */
import { parseLimits, type ImportLimits } from "@lakebed/traces";
import { UsageError, quoted } from "./usage-error.js";

const VARIABLE = "LAKEBED_LIMITS";

/** Checks the option's value (a UsageError when malformed) and keeps it for loadTrace. */
export function setImportLimits(text: string): void {
  limitsFrom(text, "--limits");
  process.env[VARIABLE] = text;
}

/** The limits chosen for this process: none (the importer's defaults) unless set. */
export function importLimits(): Partial<ImportLimits> {
  const text = process.env[VARIABLE];
  return text === undefined ? {} : limitsFrom(text, VARIABLE);
}

function limitsFrom(text: string, source: string): Partial<ImportLimits> {
  try {
    return parseLimits(text);
  } catch (error) {
    throw new UsageError(`${source} ${quoted(text)}: ${(error as Error).message}`);
  }
}
