// The device calls a live replay really made, in order: for each call the policy's imported device
// sent to the driver, its kind (named as core-sim's DEVICE_CALL_NAMES, which follow native-cuda's
// CALL_KINDS) and the bytes it named. The simulated device keeps the same log (core-sim's
// assembly/device/call-log.ts), so the differential test can compare the two sequences entry by
// entry. With `timed`, each call's wall-clock latency and operands (the driver's address and
// handle, and whether it succeeded) are kept too: the benchmark's per-call figures, and what it
// needs to make the very same calls again through the raw driver (native-cuda's bench/raw_replay).
import { DEVICE_CALL_NAMES } from "@lakebed/core-sim";

/** Device calls in order; kinds index DEVICE_CALL_NAMES. */
export interface CallSequence {
  kinds: Uint8Array;
  bytes: Float64Array;
}

const KIND_INDEX: ReadonlyMap<string, number> = new Map(DEVICE_CALL_NAMES.map((name, i) => [name, i]));

export function callKindIndex(name: string): number {
  const i = KIND_INDEX.get(name);
  if (i === undefined) throw new Error(`no device call named '${name}'`);
  return i;
}

export class CallRecorder {
  private kinds = new Uint8Array(1024);
  private bytes = new Float64Array(1024);
  private micros: Float64Array | null;
  private vas: Float64Array | null;
  private handles: Int32Array | null;
  count = 0;

  constructor(readonly timed = false) {
    this.micros = timed ? new Float64Array(1024) : null;
    this.vas = timed ? new Float64Array(1024) : null;
    this.handles = timed ? new Int32Array(1024) : null;
  }

  /** Records a call about to be made; returns its index (for `took`). */
  record(kind: number, bytes: number): number {
    if (this.count === this.kinds.length) this.grow();
    this.kinds[this.count] = kind;
    this.bytes[this.count] = bytes;
    return this.count++;
  }

  /** The call at `index` took `us` microseconds (timed recorders only). */
  took(index: number, us: number): void {
    if (this.micros) this.micros[index] = us;
  }

  /** The driver address and handle the call at `index` named or got (-1 handle: none, or it
   * failed; for addressReserve, the alignment asked for); timed recorders only. */
  operands(index: number, va: number, handle: number): void {
    if (this.vas && this.handles) {
      this.vas[index] = va;
      this.handles[index] = handle;
    }
  }

  /** One line per call, "kind bytes va handle", the input of native-cuda's bench/raw_replay. */
  operandLines(): string {
    if (!this.vas || !this.handles) throw new Error("operands are recorded by timed recorders only");
    const lines: string[] = [];
    for (let i = 0; i < this.count; i++) lines.push(`${DEVICE_CALL_NAMES[this.kinds[i]]} ${this.bytes[i]} ${this.vas[i]} ${this.handles[i]}`);
    return `${lines.join("\n")}\n`;
  }

  /** Latency of every call in order (timed recorders only). */
  allMicros(): Float64Array {
    return this.micros ? this.micros.slice(0, this.count) : new Float64Array(0);
  }

  sequence(): CallSequence {
    return { kinds: this.kinds.slice(0, this.count), bytes: this.bytes.slice(0, this.count) };
  }

  /** Calls made per kind, by name (only kinds made). */
  perKind(): Record<string, number> {
    const out: Record<string, number> = {};
    for (let i = 0; i < this.count; i++) {
      const name = DEVICE_CALL_NAMES[this.kinds[i]];
      out[name] = (out[name] ?? 0) + 1;
    }
    return out;
  }

  /** Latencies (us) of the calls of one kind whose bytes match `filter` (timed recorders only). */
  latencies(kind: number, filter: (bytes: number) => boolean = () => true): number[] {
    const out: number[] = [];
    if (!this.micros) return out;
    for (let i = 0; i < this.count; i++) if (this.kinds[i] === kind && filter(this.bytes[i])) out.push(this.micros[i]);
    return out;
  }

  private grow(): void {
    const n = this.kinds.length * 2;
    const kinds = new Uint8Array(n);
    kinds.set(this.kinds);
    const bytes = new Float64Array(n);
    bytes.set(this.bytes);
    this.kinds = kinds;
    this.bytes = bytes;
    if (this.micros && this.vas && this.handles) {
      const micros = new Float64Array(n);
      micros.set(this.micros);
      this.micros = micros;
      const vas = new Float64Array(n);
      vas.set(this.vas);
      this.vas = vas;
      const handles = new Int32Array(n);
      handles.set(this.handles);
      this.handles = handles;
    }
  }
}
