// Test support: seeded random programs (allocations of every size class on up to three streams,
// frees, frees that wait on other streams, empty_cache calls, out-of-memory entries), the input of
// the random-program tests of every policy.
import { expect } from "vitest";
import { parseAllocConf, replayDevice, type DeviceReplayResult, type PolicyName } from "@lakebed/core-sim";
import { Rng } from "../../../../test/support/random.js";
import { MiB, buildTrace, type Op } from "./traces.js";

/** A program of `steps` operations over `streams` streams, the same for the same seed. */
export function randomProgram(seed: number, steps: number, streams: number): Op[] {
  const rng = new Rng(seed);
  const rand = () => rng.unit();
  const size = () => {
    const r = rand();
    if (r < 0.45) return 1 + Math.floor(rand() * MiB); // small pool
    if (r < 0.8) return MiB + Math.floor(rand() * 9 * MiB); // 1-10 MiB: shared 20 MiB segments
    if (r < 0.97) return 10 * MiB + Math.floor(rand() * 90 * MiB);
    return 100 * MiB + Math.floor(rand() * 400 * MiB);
  };
  const ops: Op[] = [];
  const live: string[] = [];
  const pending: string[] = [];
  let n = 0;
  for (let step = 0; step < steps; step++) {
    const r = rand();
    if ((r < 0.5 && live.length < 120) || live.length === 0) {
      const name = `b${n++}`;
      ops.push({ alloc: size(), name, stream: Math.floor(rand() * streams) });
      live.push(name);
    } else if (r < 0.88) {
      const name = live.splice(Math.floor(rand() * live.length), 1)[0];
      if (streams > 1 && rand() < 0.2) {
        ops.push({ freeRequested: name });
        pending.push(name);
      } else {
        ops.push({ free: name });
      }
    } else if (r < 0.95 && pending.length > 0) {
      ops.push({ freeCompleted: pending.splice(Math.floor(rand() * pending.length), 1)[0] });
    } else if (r < 0.97) {
      ops.push({ segmentFree: 0x7f0000000000, bytes: 2 * MiB });
    } else if (r < 0.98) {
      ops.push({ oom: rng.pick([64, 256, 1024]) * MiB, stream: 0 });
    }
  }
  for (const name of pending) ops.push({ freeCompleted: name });
  return ops;
}


/**
 * Replays a seeded random program through `policy` with isValid after every event, checks what
 * every policy must keep (allocated <= active <= reserved, the capacity, determinism: the same
 * program gives the same stats), and returns the result for policy-specific checks.
 */
export function replayRandomProgram(policy: PolicyName, confText: string, seed: number, streams: number, capacityMiB?: number): DeviceReplayResult {
  const trace = buildTrace(randomProgram(seed, 4000, streams), streams);
  const options = { policy, conf: parseAllocConf(confText), capacityBytes: capacityMiB ? capacityMiB * MiB : undefined, checkEvery: 1 };
  const r = replayDevice(trace, options);
  const stats = r.stats;
  expect(stats["allocated_bytes.all.current"]).toBeLessThanOrEqual(stats["active_bytes.all.current"]);
  expect(stats["active_bytes.all.current"]).toBeLessThanOrEqual(stats["reserved_bytes.all.current"]);
  expect(stats["requested_bytes.all.current"]).toBeLessThanOrEqual(stats["active_bytes.all.current"]);
  // a new segment or chunk is refused past the limit (an expandable map may round up by one page)
  if (capacityMiB) expect(stats["reserved_bytes.all.peak"]).toBeLessThanOrEqual(capacityMiB * MiB + (policy === "expandable" ? 20 * MiB : 0));
  expect(replayDevice(trace, options).stats).toEqual(stats);
  return r;
}
