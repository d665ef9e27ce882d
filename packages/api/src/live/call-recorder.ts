// The device calls a live replay really made, in order: for each call the policy's imported device
// sent to the driver (native-cuda's wasm-imports.ts binds the policy's Wasm to it), its kind (named as core-sim's DEVICE_CALL_NAMES, which follow native-cuda's
// CALL_KINDS) and the bytes it named. The simulated device keeps the same log (core-sim's
// assembly/device/call-log.ts), so the differential test can compare the two sequences entry by
// entry. With `timed`, each call's wall-clock latency and operands (the driver's address and
// handle, and whether it succeeded) are kept too: the benchmark's per-call figures, and what it
// needs to make the very same calls again through the raw driver (native-cuda's bench/raw_replay).
// A timed recorder also takes the native layer's own timing of each call (attachNativeTimes):
// three figures per call, from the outside in: the driver function alone, the C++ backend
// (DriverCore around it), and the whole path from the policy's Wasm import.
import { DEVICE_CALL_NAMES } from "@lakebed/core-sim";
import { CALL_KINDS, type CallSink, type NativeCallTimes } from "@lakebed/native-cuda";

/** Device calls in order; kinds index DEVICE_CALL_NAMES. */
export interface CallSequence {
  kinds: Uint8Array;
  bytes: Float64Array;
}

const KIND_INDEX: ReadonlyMap<string, number> = new Map(DEVICE_CALL_NAMES.map((name, i) => [name, i]));
/** native-cuda's call kinds (NativeCallTimes.kinds) as DEVICE_CALL_NAMES indices; -1: none */
const FROM_NATIVE_KIND = CALL_KINDS.map((name) => KIND_INDEX.get(name) ?? -1);

export function callKindIndex(name: string): number {
  const i = KIND_INDEX.get(name);
  if (i === undefined) throw new Error(`no device call named '${name}'`);
  return i;
}

/** The live replay's log of driver calls: the sink native-cuda's bindDriver records into. */
export class CallRecorder implements CallSink {
  private kinds = new Uint8Array(1024);
  private bytes = new Float64Array(1024);
  private micros: Float64Array | null;
  /** the native layer's figures for each call (us; -1: none), once attachNativeTimes ran */
  private core: Float64Array | null = null;
  private driver: Float64Array | null = null;
  private clockReadNs = 0;
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

  /**
   * The call at `index`, started at `t0` (performance.now()), has just returned: its latency, and
   * the driver address and handle it named or got (-1 handle: none, or it failed; for
   * addressReserve, the alignment asked for). Timed recorders only.
   */
  took(index: number, t0: number, va: number, handle: number): void {
    const us = (performance.now() - t0) * 1000;
    if (this.micros && this.vas && this.handles) {
      this.micros[index] = us;
      this.vas[index] = va;
      this.handles[index] = handle;
    }
  }

  /**
   * Pairs the native layer's timing of each call (Driver.takeCallTimes, taken after the replay)
   * with the recorded calls, in order and kind by kind: a native entry whose kind is not the next
   * recorded call's belongs to a call the recorder does not log (pattern fills and checks, the
   * memory watch's and memGetInfoTotal's cuMemGetInfo) and is passed over.
   */
  attachNativeTimes(times: NativeCallTimes): void {
    const core = new Float64Array(this.count).fill(-1);
    const driver = new Float64Array(this.count).fill(-1);
    let j = 0;
    for (let i = 0; i < this.count; i++) {
      while (j < times.kinds.length && FROM_NATIVE_KIND[times.kinds[j]] !== this.kinds[i]) j++;
      if (j === times.kinds.length) break;
      core[i] = times.coreNs[j] / 1000;
      driver[i] = times.driverNs[j] < 0 ? -1 : times.driverNs[j] / 1000;
      j++;
    }
    this.core = core;
    this.driver = driver;
    this.clockReadNs = times.clockReadNs;
  }

  /** What one native clock read cost while the attached times were taken (ns; 0: none). */
  nativeClockReadNs(): number {
    return this.clockReadNs;
  }

  /** The C++ backend's time in each call (DriverCore: checks, tables, the driver call), us; -1
   * where no native figure was attached. */
  coreMicros(): Float64Array {
    return this.core ? this.core.slice(0, this.count) : new Float64Array(this.count).fill(-1);
  }

  /** The driver function's own time in each call, inside the backend, us; -1 where none. */
  driverMicros(): Float64Array {
    return this.driver ? this.driver.slice(0, this.count) : new Float64Array(this.count).fill(-1);
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
