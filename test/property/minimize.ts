import { MiB, repair, type Op } from "../generators/program.js";

/**
 * Shrinks a failing program to a minimal one that still fails the same way, after fast-check's own
 * shrinking (which works on the generator's parameters, so a realistic workload stays large).
 *
 *  1. delta debugging over ops: drop chunks of halving size (an alloc takes its free with it);
 *  2. simplify what is left: streams to 0, limits to unlimited, sizes to 512 B or smaller round ones;
 *  3. repeat while anything changed, within `maxRuns` runs of the program.
 */
export function minimizeProgram(ops: readonly Op[], stillFails: (ops: Op[]) => boolean, maxRuns = 3000): Op[] {
  let best = repair(ops);
  let runs = 0;
  const tryCandidate = (c: Op[]): boolean => {
    if (runs >= maxRuns) return false;
    runs++;
    if (!stillFails(c)) return false;
    best = c;
    return true;
  };

  let changed = true;
  while (changed && runs < maxRuns) {
    changed = false;
    for (let chunk = Math.max(1, best.length >> 1); chunk >= 1; chunk >>= 1) {
      for (let at = 0; at < best.length && runs < maxRuns; ) {
        const candidate = repair([...best.slice(0, at), ...best.slice(at + chunk)]);
        if (candidate.length < best.length && tryCandidate(candidate)) changed = true;
        else at += chunk;
      }
    }
    for (let i = 0; i < best.length && runs < maxRuns; i++) {
      for (const simpler of simplifications(best[i])) {
        const candidate = [...best.slice(0, i), simpler, ...best.slice(i + 1)];
        if (tryCandidate(candidate)) {
          changed = true;
          break;
        }
      }
    }
  }
  return best;
}

/** simpler versions of one op, simplest first */
function simplifications(o: Op): Op[] {
  if (o.op === "setCapacity") return o.bytes === null ? [] : [{ ...o, bytes: null }];
  if (o.op !== "alloc") return [];
  const out: Op[] = [];
  if (o.stream !== 0) out.push({ ...o, stream: 0 });
  const sizes = [512, MiB, 2 * MiB, 10 * MiB, 20 * MiB, Math.floor(o.bytes / MiB) * MiB, Math.floor(o.bytes / 512) * 512, Math.floor(o.bytes / 2)];
  for (const bytes of sizes) if (bytes >= 1 && bytes < o.bytes) out.push({ ...o, bytes });
  return out;
}
