/**
 * What the snapshot readers know about decoded plain values (pickle or JSON): which are dicts, and
 * how to name a value in a one-line error message.
 */

/** A decoded dict: a plain object (pickle dicts have a null prototype, JSON objects do not). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** A short description of a decoded value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return "None";
  if (value === undefined) return "missing";
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === "bigint") {
    // a pickle LONG may have thousands of digits: a message stays one short line
    const digits = String(value);
    return digits.length > 24 ? `${digits.slice(0, 12)}... (an integer of ${digits.replace("-", "").length} digits)` : digits;
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return "a list";
  return "a dict";
}
