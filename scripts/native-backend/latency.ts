// Latency summaries for the native-backend benchmark: median and p99 of samples in microseconds.

export interface LatencySummary {
  n: number;
  medianUs: number;
  p99Us: number;
  meanUs: number;
}

/** Negative samples stand for "no figure" and are left out, unless they are differences. */
export function summarize(samples: ArrayLike<number>, differences = false): LatencySummary | null {
  const xs = Array.from(samples).filter((x) => differences || x >= 0).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const at = (q: number) => xs[Math.min(xs.length - 1, Math.floor(q * (xs.length - 1) + 0.5))];
  return { n: xs.length, medianUs: at(0.5), p99Us: at(0.99), meanUs: xs.reduce((a, b) => a + b, 0) / xs.length };
}
