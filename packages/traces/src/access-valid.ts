/**
 * Checks the invariants model.ts states for use events (INV-USE-1 .. INV-USE-4) against the
 * device's events. The join produces them by construction; this is for the Arrow reader (a file
 * may be damaged or edited), for tests, and for use events built by hand. First violation, or null.
 */
import { Action, UseKind, type AccessColumns, type DeviceTrace } from "./model.js";

export function checkAccessColumns(d: DeviceTrace, a: AccessColumns): string | null {
  const { uses, operators } = a;
  for (const [name, column] of Object.entries(uses)) {
    if (name !== "length" && (column as ArrayLike<number>).length !== uses.length) return `INV-USE-1: use column ${name} has ${(column as ArrayLike<number>).length} entries, expected ${uses.length}`;
  }
  for (const [name, column] of Object.entries(operators)) {
    if (name !== "length" && (column as ArrayLike<number>).length !== operators.length) return `INV-USE-1: operator column ${name} has ${(column as ArrayLike<number>).length} entries, expected ${operators.length}`;
  }
  const n = d.events.length;
  for (let k = 0; k < operators.length; k++) {
    if (operators.name[k] >= a.operatorNames.length) return `INV-USE-1: operator ${k} names ${operators.name[k]} of ${a.operatorNames.length} operator names`;
    if (operators.position[k] > n || (k > 0 && operators.position[k] < operators.position[k - 1])) return `INV-USE-2: operator ${k} is at position ${operators.position[k]}`;
  }
  // block lifetimes in event indices: [alloc + 1, free_requested]
  const e = d.events;
  const born = new Map<number, number>();
  const died = new Map<number, number>();
  for (const seg of d.initialState) for (const b of seg.blocks) if (b.state === "allocated") born.set(b.blockId, 0);
  for (let i = 0; i < n; i++) {
    if (e.action[i] === Action.Alloc) born.set(e.blockId[i], i + 1);
    else if (e.action[i] === Action.FreeRequested) died.set(e.blockId[i], i);
  }
  for (let u = 0; u < uses.length; u++) {
    const p = uses.position[u];
    if (p > n || (u > 0 && p < uses.position[u - 1])) return `INV-USE-2: use ${u} is at position ${p}`;
    const kind = uses.kind[u];
    if (kind !== UseKind.Read && kind !== UseKind.Write && kind !== UseKind.ReadWrite && kind !== UseKind.Scratch) return `use ${u} has kind ${kind}`;
    const block = uses.blockId[u];
    const from = born.get(block);
    const until = died.get(block) ?? n;
    if (from === undefined || p < from || p > until) return `INV-USE-3: use ${u} at position ${p} names block ${block}, which is not live there`;
    if (uses.operator[u] >= operators.length) return `INV-USE-4: use ${u} names operator ${uses.operator[u]} of ${operators.length}`;
  }
  return null;
}
