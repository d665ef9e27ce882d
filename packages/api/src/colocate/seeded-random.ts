// The scenario's randomness (arrival times, which segment a request replays): seeded, so that a
// scenario file gives the same figures on every run. mulberry32: 32 bits of state, enough for
// arrival processes of a few thousand requests.
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Poisson arrivals: exponential gaps of mean 1/ratePerS, from startS up to endS (seconds). */
export function poissonArrivals(ratePerS: number, startS: number, endS: number, random: () => number): number[] {
  const out: number[] = [];
  let t = startS;
  for (;;) {
    t += -Math.log(1 - random()) / ratePerS;
    if (t >= endS) return out;
    out.push(t);
  }
}
