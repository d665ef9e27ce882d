// The simulated device's call log: every driver call in the order the policy made it, as (kind,
// bytes). A live replay records the same pair for each call it really makes (packages/api,
// src/live/call-recorder.ts), and the differential test compares the two sequences: the policy
// must ask a real device for exactly what it asked the simulator for. Off unless asked for (one
// entry per call; a trace makes hundreds to tens of thousands).
//
//   kinds: u8[count]    CALL_* of device.ts
//   bytes: f64[count]   the size the call named (0 for calls without one)

export class CallLog {
  kinds: StaticArray<u8> = new StaticArray<u8>(1024);
  bytes: StaticArray<f64> = new StaticArray<f64>(1024);
  count: i32 = 0;

  add(kind: i32, bytes: u64): void {
    if (this.count == this.kinds.length) this.grow();
    unchecked((this.kinds[this.count] = <u8>kind));
    unchecked((this.bytes[this.count] = <f64>bytes));
    this.count++;
  }

  private grow(): void {
    const n = this.kinds.length * 2;
    const kinds = new StaticArray<u8>(n);
    const bytes = new StaticArray<f64>(n);
    memory.copy(changetype<usize>(kinds), changetype<usize>(this.kinds), <usize>this.count);
    memory.copy(changetype<usize>(bytes), changetype<usize>(this.bytes), <usize>this.count << 3);
    this.kinds = kinds;
    this.bytes = bytes;
  }
}
