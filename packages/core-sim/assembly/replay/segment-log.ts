// The emulator's own device-level events (what a PyTorch trace records as segment_alloc,
// segment_free, segment_map and segment_unmap), each with the index of the trace event being
// replayed when it happened. `lakebed verify` compares them with the trace's own.
//
// Entry i lives in four parallel columns:
//   eventIndex: i32   action: u8 (the trace model's Action values)   addr: f64   size: f64
// f64 because the TypeScript side reads the columns as typed arrays; whole bytes are exact below
// 2^53.

// the actions a policy records here (declared in actions.ts)
export { ACTION_SEGMENT_ALLOC, ACTION_SEGMENT_FREE, ACTION_SEGMENT_MAP, ACTION_SEGMENT_UNMAP } from "./actions";

export class SegmentLog {
  /** the trace event the replay is serving (set by the replay loop) */
  currentEvent: i32 = 0;
  count: i32 = 0;
  eventIndex: StaticArray<i32> = new StaticArray<i32>(256);
  action: StaticArray<u8> = new StaticArray<u8>(256);
  addr: StaticArray<f64> = new StaticArray<f64>(256);
  size: StaticArray<f64> = new StaticArray<f64>(256);

  record(action: u8, addr: u64, size: u64): void {
    if (this.count == this.action.length) this.grow();
    const i = this.count++;
    unchecked((this.eventIndex[i] = this.currentEvent));
    unchecked((this.action[i] = action));
    unchecked((this.addr[i] = <f64>addr));
    unchecked((this.size[i] = <f64>size));
  }

  private grow(): void {
    const n = this.action.length * 2;
    const eventIndex = new StaticArray<i32>(n);
    const action = new StaticArray<u8>(n);
    const addr = new StaticArray<f64>(n);
    const size = new StaticArray<f64>(n);
    memory.copy(changetype<usize>(eventIndex), changetype<usize>(this.eventIndex), <usize>this.count << 2);
    memory.copy(changetype<usize>(action), changetype<usize>(this.action), <usize>this.count);
    memory.copy(changetype<usize>(addr), changetype<usize>(this.addr), <usize>this.count << 3);
    memory.copy(changetype<usize>(size), changetype<usize>(this.size), <usize>this.count << 3);
    this.eventIndex = eventIndex;
    this.action = action;
    this.addr = addr;
    this.size = size;
  }
}
