import fc from "fast-check";
import type { Op } from "../generators/program.js";
import { capacityArb, requestSizeArb } from "../generators/sizes.js";
import type { PolicyUnderTest } from "./allocator-under-test.js";
import { CheckedAllocator, checkDeterminism } from "./checked-allocator.js";

/**
 * Model-based testing with fast-check commands: alloc, free, empty_cache and a change of the memory
 * limit, in any order. The model is the caller's view (the next id, which ids are live); the real
 * side is the policy wrapped in CheckedAllocator, which checks every guarantee after each command.
 * fast-check shrinks a failing sequence by dropping and simplifying commands.
 */
export interface CallerModel {
  nextId: number;
  live: number[];
}

type Cmd = fc.Command<CallerModel, CheckedAllocator>;

class AllocCommand implements Cmd {
  constructor(
    readonly bytes: number,
    readonly stream: number,
  ) {}
  check = () => true;
  run(m: CallerModel, r: CheckedAllocator): void {
    const id = m.nextId++;
    r.apply({ op: "alloc", id, bytes: this.bytes, stream: this.stream });
    if (r.results[r.results.length - 1] !== null) m.live.push(id);
  }
  toString = () => `alloc(${this.bytes}, stream ${this.stream})`;
}

class FreeCommand implements Cmd {
  constructor(readonly pick: number) {}
  check = (m: Readonly<CallerModel>) => m.live.length > 0;
  run(m: CallerModel, r: CheckedAllocator): void {
    const [id] = m.live.splice(this.pick % m.live.length, 1);
    r.apply({ op: "free", id });
  }
  toString = () => `free(live[${this.pick} % n])`;
}

class EmptyCacheCommand implements Cmd {
  check = () => true;
  run(_m: CallerModel, r: CheckedAllocator): void {
    r.apply({ op: "emptyCache" });
  }
  toString = () => "empty_cache()";
}

class SetCapacityCommand implements Cmd {
  constructor(readonly bytes: number | null) {}
  check = () => true;
  run(_m: CallerModel, r: CheckedAllocator): void {
    r.apply({ op: "setCapacity", bytes: this.bytes });
  }
  toString = () => `set_capacity(${this.bytes ?? "unlimited"})`;
}

export function allocatorCommands(maxCommands = 120): fc.Arbitrary<Iterable<Cmd>> {
  return fc.commands(
    [
      fc.record({ bytes: requestSizeArb, stream: fc.constantFrom(0, 0, 0, 1, 2) }).map(({ bytes, stream }) => new AllocCommand(bytes, stream)),
      fc.record({ bytes: requestSizeArb, stream: fc.constantFrom(0, 0, 0, 1, 2) }).map(({ bytes, stream }) => new AllocCommand(bytes, stream)),
      fc.nat().map((pick) => new FreeCommand(pick)),
      fc.nat().map((pick) => new FreeCommand(pick)),
      fc.constant(new EmptyCacheCommand()),
      capacityArb.map((bytes) => new SetCapacityCommand(bytes)),
    ],
    // "large": sequences long enough to fill segments, fragment them and reuse the holes (the
    // default size makes a handful of commands); fast-check still shrinks them to a few
    { maxCommands, size: "large" },
  );
}

/**
 * Runs one command sequence against a fresh instance, then replays the program it produced on
 * another fresh instance (G-DETERMINISM). Returns the program, for writing out a trace on failure.
 */
export function runCommands(policy: PolicyUnderTest, cmds: Iterable<Cmd>): Op[] {
  const real = new CheckedAllocator(policy);
  try {
    fc.modelRun(() => ({ model: { nextId: 0, live: [] }, real }), cmds);
    real.finish();
    const run = { results: real.results, finalStats: real.finalStats() };
    if (real.ops.length > 0) checkDeterminism(policy, real.ops, run);
    return real.ops;
  } finally {
    real.dispose();
  }
}

/** The program a command sequence produces, also when it fails part-way (up to the failing step). */
export function programOf(policy: PolicyUnderTest, cmds: Iterable<Cmd>): Op[] {
  const real = new CheckedAllocator(policy);
  try {
    fc.modelRun(() => ({ model: { nextId: 0, live: [] }, real }), cmds);
  } catch {
    // the failing step is the last op recorded
  } finally {
    real.dispose();
  }
  return real.ops;
}
