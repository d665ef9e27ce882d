/**
 * A program is what a job asks of the allocator, in order: allocations (with the caller's own ids),
 * frees, empty_cache calls and changes of the memory limit. Generators build programs; the property
 * harness runs them through a policy; the trace writer turns them into snapshot files.
 *
 * Well-formed programs (what `ProgramBuilder` makes and `isWellFormed` checks):
 *  - alloc ids are unique;
 *  - a free names an id allocated earlier and not freed since.
 */

export type Op =
  | { op: "alloc"; id: number; bytes: number; stream: number }
  | { op: "free"; id: number }
  | { op: "emptyCache" }
  | { op: "setCapacity"; bytes: number | null };

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Builds a well-formed program; ids are handed out in order from 0. */
export class ProgramBuilder {
  readonly ops: Op[] = [];
  private nextId = 0;
  private readonly live = new Set<number>();

  alloc(bytes: number, stream = 0): number {
    const id = this.nextId++;
    this.ops.push({ op: "alloc", id, bytes: Math.max(1, Math.round(bytes)), stream });
    this.live.add(id);
    return id;
  }

  free(id: number): void {
    if (!this.live.delete(id)) throw new Error(`program builder: free of id ${id} that is not live`);
    this.ops.push({ op: "free", id });
  }

  freeAll(ids: Iterable<number>): void {
    for (const id of ids) this.free(id);
  }

  /** a temporary: allocated and freed right away */
  scratch(bytes: number, stream = 0): void {
    this.free(this.alloc(bytes, stream));
  }

  emptyCache(): void {
    this.ops.push({ op: "emptyCache" });
  }

  setCapacity(bytes: number | null): void {
    this.ops.push({ op: "setCapacity", bytes });
  }

  liveIds(): number[] {
    return [...this.live];
  }
}

export function isWellFormed(ops: readonly Op[]): boolean {
  const seen = new Set<number>();
  const live = new Set<number>();
  for (const o of ops) {
    if (o.op === "alloc") {
      if (seen.has(o.id)) return false;
      seen.add(o.id);
      live.add(o.id);
    } else if (o.op === "free") {
      if (!live.delete(o.id)) return false;
    }
  }
  return true;
}

/** Drops frees whose alloc is gone (after a shrinking step removed it); keeps everything else. */
export function repair(ops: readonly Op[]): Op[] {
  const live = new Set<number>();
  const out: Op[] = [];
  for (const o of ops) {
    if (o.op === "alloc") {
      if (live.has(o.id)) continue;
      live.add(o.id);
    } else if (o.op === "free") {
      if (!live.delete(o.id)) continue;
    }
    out.push(o);
  }
  return out;
}

export function describeOp(o: Op): string {
  switch (o.op) {
    case "alloc":
      return `alloc #${o.id} ${o.bytes} B on stream ${o.stream}`;
    case "free":
      return `free #${o.id}`;
    case "emptyCache":
      return "empty_cache";
    case "setCapacity":
      return `capacity ${o.bytes === null ? "unlimited" : `${o.bytes} B`}`;
  }
}
