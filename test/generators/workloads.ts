import fc from "fast-check";
import { sawtoothArb, pinningArb, swissCheeseArb, thresholdsArb } from "./adversarial.js";
import { inferenceArb } from "./inference.js";
import { ProgramBuilder, type Op } from "./program.js";
import { capacityArb, requestSizeArb } from "./sizes.js";
import { streamsArb } from "./streams.js";
import { trainingArb } from "./training.js";

/**
 * The catalogue of program generators. Each workload is a named arbitrary; `workloadArb` draws from
 * all of them, and may lay a memory limit and empty_cache calls over the program (what a job under
 * `set_per_process_memory_fraction`, or one that calls `torch.cuda.empty_cache()`, does).
 */

/** Any interleaving of allocs, frees, empty_cache and limit changes, with sizes from requestSizeArb. */
export const randomProgramArb: fc.Arbitrary<Op[]> = fc
  .array(
    fc.record({
      kind: fc.oneof(
        { weight: 12, arbitrary: fc.constant("alloc" as const) },
        { weight: 8, arbitrary: fc.constant("free" as const) },
        { weight: 1, arbitrary: fc.constant("emptyCache" as const) },
        { weight: 1, arbitrary: fc.constant("setCapacity" as const) },
      ),
      bytes: requestSizeArb,
      stream: fc.constantFrom(0, 0, 0, 1, 2),
      pick: fc.nat(),
      capacity: capacityArb,
    }),
    { maxLength: 80 },
  )
  .map((steps) => {
    const b = new ProgramBuilder();
    for (const s of steps) {
      if (s.kind === "alloc") b.alloc(s.bytes, s.stream);
      else if (s.kind === "free") {
        const live = b.liveIds();
        if (live.length > 0) b.free(live[s.pick % live.length]);
      } else if (s.kind === "emptyCache") b.emptyCache();
      else b.setCapacity(s.capacity);
    }
    return b.ops;
  });

export const WORKLOADS: Readonly<Record<string, fc.Arbitrary<Op[]>>> = {
  training: trainingArb,
  inference: inferenceArb,
  streams: streamsArb,
  swissCheese: swissCheeseArb,
  sawtooth: sawtoothArb,
  pinning: pinningArb,
  thresholds: thresholdsArb,
  random: randomProgramArb,
};

/** Inserts limit changes and empty_cache calls at drawn positions of a program. */
export function withPressure(programArb: fc.Arbitrary<Op[]>): fc.Arbitrary<Op[]> {
  return fc
    .tuple(
      programArb,
      fc.array(fc.record({ at: fc.nat(), capacity: capacityArb }), { maxLength: 3 }),
      fc.array(fc.nat(), { maxLength: 3 }),
    )
    .map(([ops, limits, emptyCaches]) => {
      const inserts = new Map<number, Op[]>();
      const put = (at: number, o: Op) => {
        const k = at % (ops.length + 1);
        inserts.set(k, [...(inserts.get(k) ?? []), o]);
      };
      for (const l of limits) put(l.at, { op: "setCapacity", bytes: l.capacity });
      for (const at of emptyCaches) put(at, { op: "emptyCache" });
      const out: Op[] = [];
      for (let i = 0; i <= ops.length; i++) {
        out.push(...(inserts.get(i) ?? []));
        if (i < ops.length) out.push(ops[i]);
      }
      return out;
    });
}

export interface Workload {
  kind: string;
  ops: Op[];
}

/** one workload of any kind, half of the time under memory pressure */
export const workloadArb: fc.Arbitrary<Workload> = fc.oneof(
  ...Object.entries(WORKLOADS).map(([kind, arb]) =>
    fc.oneof(arb, withPressure(arb)).map((ops): Workload => ({ kind, ops })),
  ),
);
