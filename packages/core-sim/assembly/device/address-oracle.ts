// The address oracle: a simulated device that replays a trace hands out the addresses PyTorch got.
// With the real segment bases every allocation lands at PyTorch's own address; with invented ones,
// best-fit ties between equal-size blocks go another way (reference E).
//
// The replay registers the trace's segment_alloc events (cudaMalloc: address and bytes) and
// segment_map events (expandable segments: the first map in a fresh reservation is at its base)
// in trace order, each with its event index. Then:
// - malloc(bytes) takes the first segment_alloc not yet taken, among the next LOOKAHEAD ones, that
//   has the same size and whose range is free on the device;
// - addressReserve(bytes) takes the next segment_map whose address lies outside every live
//   reservation (maps inside live reservations belong to segments that exist already) and whose
//   whole range is free.
// Both only consider events recorded after the previous request (`notBefore`, which the replay
// moves forward): PyTorch writes a request's segment events right before it, and an older map into
// a reservation that has since been released would otherwise look like a fresh base.
// Where nothing matches (the replay runs other settings or another policy), the device falls back
// to the address model (address-model.ts).

import { RangeList } from "./range-list";
import { NO_ADDRESS } from "./device";

const LOOKAHEAD: i32 = 64;

export class AddressOracle {
  private mallocAddrs: StaticArray<u64>;
  private mallocSizes: StaticArray<u64>;
  private mallocTaken: StaticArray<bool>;
  private mallocEvents: StaticArray<i32>;
  private mallocCount: i32 = 0;
  private mallocCursor: i32 = 0;
  private mapAddrs: StaticArray<u64>;
  private mapEvents: StaticArray<i32>;
  private mapCount: i32 = 0;
  private mapCursor: i32 = 0;
  /** events before this index belong to earlier requests: they are not offered */
  notBefore: i32 = 0;

  constructor(mallocCapacity: i32, mapCapacity: i32) {
    this.mallocAddrs = new StaticArray<u64>(max(mallocCapacity, 1));
    this.mallocSizes = new StaticArray<u64>(max(mallocCapacity, 1));
    this.mallocTaken = new StaticArray<bool>(max(mallocCapacity, 1));
    this.mallocEvents = new StaticArray<i32>(max(mallocCapacity, 1));
    this.mapAddrs = new StaticArray<u64>(max(mapCapacity, 1));
    this.mapEvents = new StaticArray<i32>(max(mapCapacity, 1));
  }

  addMalloc(addr: u64, bytes: u64, event: i32): void {
    this.mallocEvents[this.mallocCount] = event;
    this.mallocAddrs[this.mallocCount] = addr;
    this.mallocSizes[this.mallocCount] = bytes;
    this.mallocCount++;
  }

  addMap(addr: u64, event: i32): void {
    this.mapEvents[this.mapCount] = event;
    this.mapAddrs[this.mapCount++] = addr;
  }

  /** The recorded base for a cudaMalloc of `bytes`, or NO_ADDRESS. */
  takeMalloc(bytes: u64, mallocs: RangeList, reservations: RangeList): u64 {
    const end = min(this.mallocCount, this.mallocCursor + LOOKAHEAD);
    for (let i = this.mallocCursor; i < end; i++) {
      if (unchecked(this.mallocTaken[i]) || unchecked(this.mallocSizes[i]) != bytes) continue;
      if (unchecked(this.mallocEvents[i]) < this.notBefore) continue;
      const addr = unchecked(this.mallocAddrs[i]);
      if (mallocs.overlaps(addr, bytes) || reservations.overlaps(addr, bytes)) continue;
      unchecked((this.mallocTaken[i] = true));
      while (this.mallocCursor < this.mallocCount && unchecked(this.mallocTaken[this.mallocCursor])) this.mallocCursor++;
      return addr;
    }
    return NO_ADDRESS;
  }

  /** The recorded base for a reservation of `bytes`, or NO_ADDRESS. */
  takeReservation(bytes: u64, reservations: RangeList, mallocs: RangeList): u64 {
    for (let i = this.mapCursor; i < this.mapCount; i++) {
      if (unchecked(this.mapEvents[i]) < this.notBefore) continue;
      const addr = unchecked(this.mapAddrs[i]);
      if (reservations.containing(addr) >= 0) continue;
      if (reservations.overlaps(addr, bytes) || mallocs.overlaps(addr, bytes)) continue;
      this.mapCursor = i + 1;
      return addr;
    }
    return NO_ADDRESS;
  }
}
