import { UsageError, quoted } from "./usage-error.js";

/**
 * Byte quantities as users write them and as tables show them.
 *
 * Binary units (KiB, MiB, GiB, TiB) are powers of 1024; decimal units (KB, MB, GB, TB) are powers of
 * 1000, as on GPU spec sheets ("H100 80GB" is 85,017,493,504 bytes of which 80 GB is the marketing
 * figure). A bare number is bytes. Hand-written rather than a library: the npm `bytes` package reads
 * "GB" as 1024^3 and rejects "GiB", and a capacity off by 7% is a wrong answer here.
 */

const UNIT_BYTES: Readonly<Record<string, number>> = {
  b: 1,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
};

/** Parses "40GiB", "12327536558", "1.5 GB" into bytes; throws a one-line UsageError otherwise. */
export function parseBytes(text: string, what = "size"): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) throw new UsageError(`${what}: expected a number of bytes such as 40GiB or 42949672960, got ${quoted(text)}`);
  const unit = match[2].toLowerCase() || "b";
  const scale = UNIT_BYTES[unit];
  if (scale === undefined) {
    throw new UsageError(`${what}: unknown unit ${quoted(match[2])} in ${quoted(text)} (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)`);
  }
  const bytes = Math.round(Number(match[1]) * scale);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new UsageError(`${what}: ${quoted(text)} is not a positive size below 8 PiB`);
  }
  return bytes;
}

/** 28781314048 -> "26.80 GiB"; keeps three significant figures at every scale. */
export function formatBytes(bytes: number): string {
  const sign = bytes < 0 ? "-" : "";
  let value = Math.abs(bytes);
  if (value < 1024) return `${sign}${value} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${sign}${value.toFixed(2)} ${units[unit]}`;
}

/**
 * 1234567 -> "1,234,567": exact byte counts in tables, where rounding would hide a mismatch. By
 * hand, not toLocaleString: its first call loads ICU's locale data, 30 ms and more of a replay's
 * start-up (bench/results.json, cliStartup).
 */
export function formatCount(n: number): string {
  const [whole, fraction] = String(Math.abs(n)).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+$)/g, ",");
  return `${n < 0 ? "-" : ""}${grouped}${fraction === undefined ? "" : `.${fraction.slice(0, 3)}`}`;
}
