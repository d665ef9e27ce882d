import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { defaultAllocConf, parseAllocConf, replayDevice } from "@lakebed/core-sim";
import { parseTrace } from "@lakebed/traces";
import { WORKLOADS } from "../generators/workloads.js";
import { runProgram } from "./checked-allocator.js";
import { POLICY_SUITES, suitePolicy } from "./policy-suites.js";
import { QUICK_SEED } from "./quick-pass.js";
import { programToSnapshotJson } from "./trace-file.js";

/**
 * The trace file a failing program is written as is a real trace: it imports, and the replay loop
 * (what `lakebed replay --check` runs) gives each policy the same requests the harness gave it, with
 * isValid() after every event and the same peaks and statistics as driving the policy directly. So a
 * failure's trace file reproduces the failure, and generated workloads hold the invariants on the
 * replay path too. Programs without limit changes (a snapshot cannot hold a limit).
 */
const PROGRAMS_PER_KIND = 3;

describe("a program's trace file replays as the program ran", () => {
  const programs = Object.entries(WORKLOADS).flatMap(([kind, arb]) =>
    fc.sample(arb, { seed: QUICK_SEED, numRuns: PROGRAMS_PER_KIND }).map((ops, i) => ({ name: `${kind} ${i}`, ops: ops.filter((o) => o.op !== "setCapacity") })),
  ).filter((p) => p.ops.some((o) => o.op === "alloc"));
  for (const suite of POLICY_SUITES) {
    const policy = suitePolicy(suite);
    it(`${policy.name}: ${programs.length} generated workloads`, () => {
      const conf = suite.conf ? parseAllocConf(suite.conf) : defaultAllocConf();
      for (const p of programs) {
        const direct = runProgram(policy, p.ops);
        const trace = parseTrace(new TextEncoder().encode(programToSnapshotJson(p.ops)), `${p.name}.json`);
        const r = replayDevice(trace.devices[0], { policy: suite.policy, conf, checkEvery: 1, traceAddresses: false });
        expect([r.peakAllocatedBytes, r.peakReservedBytes, r.ooms], p.name).toEqual([
          direct.finalStats["allocated_bytes.all.peak"],
          direct.finalStats["reserved_bytes.all.peak"],
          direct.finalStats["num_ooms"],
        ]);
      }
    });
  }
});
