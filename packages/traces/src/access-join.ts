/**
 * Joins an operator record (access-record.ts) to an allocator trace: which live block each
 * operator read and wrote, and where in the trace, as use events (model.ts, AccessColumns).
 *
 * What ties the two together:
 *  - A CUDA tensor's storage is one allocation of PyTorch's caching allocator, so its data pointer
 *    is the address of exactly one live block at any moment (blocks at one address follow each
 *    other in time, never overlap).
 *  - A result an operator returns newly allocated (TensorRole.New) is an alloc event the operator
 *    made: at that address, during the call. Among the allocs at that address during the call it
 *    is the last one (a result stays live after the call, so nothing else can take its address
 *    before the call returns).
 *  - Both clocks are the host's wall clock in µs (the allocator's is PyTorch's approximate clock
 *    converted to Unix time). They agree to within CLOCK_SLACK_US: on the traces recorded for the
 *    project (H200, PyTorch 2.11) every result's alloc event lay at least 1 µs inside its call.
 *
 * The sweep keeps a cursor into the events and the map address -> live block as of the cursor.
 * For each operator, in the order they returned: the cursor moves past the events that happened
 * before the call began; the operator's results are found as the last alloc at their address
 * before the call returned, and the cursor moves past the latest of them. That is the operator's
 * position: every block it reads was live there (it held them for the whole call), and every
 * result exists there. Arguments are then looked up in the map.
 *
 * Scratch memory: a block allocated and freed during one call that no operator names (workspace
 * inside a kernel) gets a Scratch use by that operator right after its alloc: its accesses are
 * known to lie in that call. Blocks no operator touched are not seen (coverage reports them, access-coverage.ts).
 *
 * Views touch no data and allocate-only operators (empty, empty_strided, ...) write nothing, so
 * neither makes a use; their results still place them in the trace.
 */
import { Action, UseKind, type AccessColumns, type DeviceTrace, type Trace } from "./model.js";
import { OP_FLAG_VIEW, TensorRole, type AccessRecord, type RecordedOperator } from "./access-record.js";
import { TraceError } from "./trace-error.js";

/** µs by which the recorder's clock and the allocator's may disagree */
export const CLOCK_SLACK_US = 2;

/** operators (by overload packet) that allocate their result and write nothing into it */
const ALLOCATE_ONLY = new Set(["aten.empty", "aten.empty_strided", "aten.empty_like", "aten.new_empty", "aten.new_empty_strided", "aten.empty_permuted"]);

/** The trace with each device's use events from `record`. */
export function joinAccessRecord(trace: Trace, record: AccessRecord): Trace {
  if (trace.legacy) throw new TraceError(record.file, "a legacy PyTorch 2.0 snapshot holds no trace of events to join accesses to");
  const recordedDevices = new Set<number>();
  for (const op of record.operators) for (let k = 0; k < op.tensors.length; k += 4) recordedDevices.add(op.tensors[k]);
  const missing = [...recordedDevices].filter((dev) => !trace.devices.some((d) => d.device === dev));
  if (missing.length > 0) throw new TraceError(record.file, `the access record has operators on device ${missing[0]}, which ${trace.file} has no trace of`);
  const devices = trace.devices.map((d) => ({ ...d, access: joinDevice(d, record, trace.file) }));
  const matched = devices.reduce((n, d) => n + d.access.join.resultsMatched, 0);
  const unmatched = devices.reduce((n, d) => n + d.access.join.resultsUnmatched, 0);
  if (matched === 0 && unmatched > 0) {
    throw new TraceError(record.file, `none of the ${unmatched} results the access record says were allocated is an allocation in ${trace.file}: the two were not recorded together`);
  }
  return { ...trace, devices };
}

interface DeviceOperator {
  op: RecordedOperator;
  /** [role, ptr, nbytes] of this device's tensors, flattened */
  tensors: number[];
}

function joinDevice(d: DeviceTrace, record: AccessRecord, traceFile: string): AccessColumns {
  const e = d.events;
  const n = e.length;
  if (n > 0 && Number.isNaN(e.timeUs[0])) throw new TraceError(traceFile, "the trace records no time_us, which the join of accesses needs", { device: d.device });
  const ops: DeviceOperator[] = [];
  for (const op of record.operators) {
    const tensors: number[] = [];
    for (let k = 0; k < op.tensors.length; k += 4) if (op.tensors[k] === d.device) tensors.push(op.tensors[k + 1], op.tensors[k + 2], op.tensors[k + 3]);
    if (tensors.length > 0) ops.push({ op, tensors });
  }
  const allocsAt = allocIndexByAddress(d);
  const nextAt = new Map<number, number>(); // address -> first entry of allocsAt not before the cursor
  const live = new Map<number, number>(); // address -> block id, as of the cursor
  for (const seg of d.initialState) for (const b of seg.blocks) if (b.state === "allocated") live.set(b.address, b.blockId);
  const apply = (i: number) => {
    const a = e.action[i];
    if (a === Action.Alloc) live.set(e.addr[i], e.blockId[i]);
    else if (a === Action.FreeRequested && live.get(e.addr[i]) === e.blockId[i]) live.delete(e.addr[i]);
  };

  const out = new AccessBuilder(record.names);
  const allocateOnly = record.names.map((name) => ALLOCATE_ONLY.has(packet(name)));
  const summary = { operatorsRecorded: ops.length, operatorsBeforeTrace: 0, resultsMatched: 0, resultsUnmatched: 0, tensorsUnresolved: 0 };
  const firstUs = n > 0 ? e.timeUs[0] : Infinity;
  const placed: { startUs: number; endUs: number; index: number }[] = [];
  let cursor = 0;
  for (const { op, tensors } of ops) {
    if (op.endUs < firstUs - CLOCK_SLACK_US) {
      summary.operatorsBeforeTrace++;
      continue;
    }
    while (cursor < n && e.timeUs[cursor] < op.startUs - CLOCK_SLACK_US) apply(cursor++);
    // the results, as the alloc events that made them
    const madeAt = new Map<number, number>();
    let position = cursor;
    for (let k = 0; k < tensors.length; k += 3) {
      if (tensors[k] !== TensorRole.New) continue;
      const j = lastAllocDuring(tensors[k + 1], op.endUs + CLOCK_SLACK_US, cursor, allocsAt, nextAt, e.timeUs);
      if (j < 0) continue;
      madeAt.set(tensors[k + 1], j);
      position = Math.max(position, j + 1);
    }
    while (cursor < position) apply(cursor++);
    const index = out.operator(op.name, position, op.startUs, op.endUs);
    placed.push({ startUs: op.startUs, endUs: op.endUs, index });
    const touches = (op.flags & OP_FLAG_VIEW) === 0;
    const writes = touches && !allocateOnly[op.name];
    for (let k = 0; k < tensors.length; k += 3) {
      const role = tensors[k];
      const ptr = tensors[k + 1];
      const block = live.get(ptr);
      if (role === TensorRole.New) {
        const j = madeAt.get(ptr);
        if (j !== undefined && block === e.blockId[j]) {
          summary.resultsMatched++;
          if (writes) out.use(block, UseKind.Write);
          continue;
        }
        summary.resultsUnmatched++;
        // a block that existed before the call, handed back as a result (an operator returning a tensor it keeps)
        if (block !== undefined && touches) out.use(block, UseKind.ReadWrite);
        else if (block === undefined) summary.tensorsUnresolved++;
      } else if (block === undefined) {
        summary.tensorsUnresolved++;
      } else if (touches) {
        out.use(block, role === TensorRole.Mutated ? UseKind.ReadWrite : UseKind.Read);
      }
    }
    out.endOperator();
  }
  addScratch(d, placed, out);
  return out.finish(summary);
}

/** Alloc event indices at each address, ascending. */
function allocIndexByAddress(d: DeviceTrace): Map<number, number[]> {
  const at = new Map<number, number[]>();
  const e = d.events;
  for (let i = 0; i < e.length; i++) {
    if (e.action[i] !== Action.Alloc) continue;
    const list = at.get(e.addr[i]);
    if (list === undefined) at.set(e.addr[i], [i]);
    else list.push(i);
  }
  return at;
}

/** The last alloc event at `addr` at or after `from` whose time is at most `untilUs`; -1 if none. */
function lastAllocDuring(addr: number, untilUs: number, from: number, allocsAt: Map<number, number[]>, nextAt: Map<number, number>, timeUs: Float64Array): number {
  const list = allocsAt.get(addr);
  if (list === undefined) return -1;
  let q = nextAt.get(addr) ?? 0;
  while (q < list.length && list[q] < from) q++;
  nextAt.set(addr, q); // the cursor never moves back
  let found = -1;
  while (q < list.length && timeUs[list[q]] <= untilUs) found = list[q++];
  return found;
}

/** "aten.mm.default" -> "aten.mm" */
function packet(name: string): string {
  const parts = name.split(".");
  return parts.length > 2 ? parts.slice(0, -1).join(".") : name;
}

/**
 * Blocks no operator named, allocated and freed during one operator's call: that operator's
 * scratch memory. Each gets one Scratch use right after its alloc.
 */
function addScratch(d: DeviceTrace, placed: { startUs: number; endUs: number; index: number }[], out: AccessBuilder): void {
  const e = d.events;
  const freedAt = new Map<number, number>(); // block id -> index of its free_requested
  for (let i = 0; i < e.length; i++) if (e.action[i] === Action.FreeRequested) freedAt.set(e.blockId[i], i);
  for (let i = 0; i < e.length; i++) {
    if (e.action[i] !== Action.Alloc || out.isUsed(e.blockId[i])) continue;
    const f = freedAt.get(e.blockId[i]);
    if (f === undefined) continue;
    const k = callHolding(placed, e.timeUs[i]);
    if (k >= 0 && e.timeUs[f] <= placed[k].endUs + CLOCK_SLACK_US) out.scratch(e.blockId[i], i + 1, placed[k].index);
  }
}

/** Index in `placed` (sorted by start) of the call whose slack-widened span holds `timeUs`, or -1. */
export function callHolding(placed: { startUs: number; endUs: number }[], timeUs: number): number {
  let lo = 0;
  let hi = placed.length - 1;
  let k = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (placed[mid].startUs - CLOCK_SLACK_US <= timeUs) {
      k = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return k >= 0 && timeUs <= placed[k].endUs + CLOCK_SLACK_US ? k : -1;
}

/** Grows the columns of AccessColumns; operator uses come in position order, scratch uses are merged in at the end. */
class AccessBuilder {
  private opName: number[] = [];
  private opPosition: number[] = [];
  private opStart: number[] = [];
  private opEnd: number[] = [];
  private usePosition: number[] = [];
  private useBlock: number[] = [];
  private useKind: number[] = [];
  private useOperator: number[] = [];
  private current = new Map<number, number>(); // block -> kind bits, for the operator being built
  private used = new Set<number>();
  private scratchUses: [number, number, number][] = []; // position, block, operator

  constructor(private readonly names: string[]) {}

  operator(name: number, position: number, startUs: number, endUs: number): number {
    this.opName.push(name);
    this.opPosition.push(position);
    this.opStart.push(startUs);
    this.opEnd.push(endUs);
    return this.opName.length - 1;
  }

  use(block: number, kind: UseKind): void {
    this.current.set(block, (this.current.get(block) ?? 0) | kind);
  }

  endOperator(): void {
    const op = this.opName.length - 1;
    for (const [block, kind] of this.current) {
      this.usePosition.push(this.opPosition[op]);
      this.useBlock.push(block);
      this.useKind.push(kind);
      this.useOperator.push(op);
      this.used.add(block);
    }
    this.current.clear();
  }

  isUsed(block: number): boolean {
    return this.used.has(block);
  }

  scratch(block: number, position: number, op: number): void {
    this.scratchUses.push([position, block, op]);
  }

  finish(join: AccessColumns["join"]): AccessColumns {
    const m = this.usePosition.length + this.scratchUses.length;
    const uses = { length: m, position: new Uint32Array(m), blockId: new Int32Array(m), kind: new Uint8Array(m), operator: new Uint32Array(m) };
    // merge: scratch uses (ascending by alloc index) into operator uses (ascending by position)
    let a = 0;
    let b = 0;
    for (let i = 0; i < m; i++) {
      if (b < this.scratchUses.length && (a >= this.usePosition.length || this.scratchUses[b][0] < this.usePosition[a])) {
        [uses.position[i], uses.blockId[i], uses.operator[i]] = this.scratchUses[b++];
        uses.kind[i] = UseKind.Scratch;
      } else {
        uses.position[i] = this.usePosition[a];
        uses.blockId[i] = this.useBlock[a];
        uses.kind[i] = this.useKind[a];
        uses.operator[i] = this.useOperator[a++];
      }
    }
    const k = this.opName.length;
    return {
      operatorNames: this.names.slice(),
      operators: { length: k, name: Uint32Array.from(this.opName), position: Uint32Array.from(this.opPosition), startUs: Float64Array.from(this.opStart), endUs: Float64Array.from(this.opEnd) },
      uses,
      join,
    };
  }
}
