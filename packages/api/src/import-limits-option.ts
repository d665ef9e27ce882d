/**
 * `--limits key:value,...`: the importer's stated limits (@lakebed/traces import-limits.ts) for the
 * traces this process reads. A refusal names the key to raise ("raise it with --limits streams:N");
 * the CLI parses the option once, before the command runs, and loadTrace passes the limits on.
 */
import { DEFAULT_LIMITS, LIMIT_KEYS, parseLimits, type ImportLimits } from "@lakebed/traces";
import { UsageError, quoted } from "./usage-error.js";

export const LIMITS_OPTION_HELP = `raise (or lower) the importer's limits, e.g. streams:1024,devices:4096 (keys: ${LIMIT_KEYS.map((k) => `${k} ${DEFAULT_LIMITS[k]}`).join(", ")})`;

let chosen: Partial<ImportLimits> = {};

/** Parses the option's value (a UsageError when malformed) and keeps it for loadTrace. */
export function setImportLimits(text: string | undefined): void {
  if (text === undefined) return;
  try {
    chosen = parseLimits(text);
  } catch (error) {
    throw new UsageError(`--limits ${quoted(text)}: ${(error as Error).message}`);
  }
}

export function importLimits(): Partial<ImportLimits> {
  return chosen;
}
