// A policy's segment and block layout at one moment, in the shape of PyTorch's snapshot
// `segments` (and of the trace model's SegmentState): what `lakebed verify` compares with the
// snapshot, and what the report draws. Written by Policy.writeLayout into parallel columns:
//
//   segments: address f64, totalSize f64, stream i32, small u8, expandable u8,
//             firstBlock i32, blockCount i32          (ascending by address)
//   blocks:   address f64, size f64, requested f64, state u8 (BLOCK_*), traceId i32

export const BLOCK_ALLOCATED: u8 = 0;
export const BLOCK_PENDING_FREE: u8 = 1;
export const BLOCK_INACTIVE: u8 = 2;

export class Layout {
  segmentCount: i32 = 0;
  segAddress: StaticArray<f64> = new StaticArray<f64>(64);
  segSize: StaticArray<f64> = new StaticArray<f64>(64);
  segStream: StaticArray<i32> = new StaticArray<i32>(64);
  segSmall: StaticArray<u8> = new StaticArray<u8>(64);
  segExpandable: StaticArray<u8> = new StaticArray<u8>(64);
  segFirstBlock: StaticArray<i32> = new StaticArray<i32>(64);
  segBlockCount: StaticArray<i32> = new StaticArray<i32>(64);

  blockCount: i32 = 0;
  blkAddress: StaticArray<f64> = new StaticArray<f64>(256);
  blkSize: StaticArray<f64> = new StaticArray<f64>(256);
  blkRequested: StaticArray<f64> = new StaticArray<f64>(256);
  blkState: StaticArray<u8> = new StaticArray<u8>(256);
  blkTraceId: StaticArray<i32> = new StaticArray<i32>(256);

  /** Sizes the columns for this many entries and empties them. */
  reset(segments: i32, blocks: i32): void {
    if (segments > this.segAddress.length) {
      const n = max(segments, 1);
      this.segAddress = new StaticArray<f64>(n);
      this.segSize = new StaticArray<f64>(n);
      this.segStream = new StaticArray<i32>(n);
      this.segSmall = new StaticArray<u8>(n);
      this.segExpandable = new StaticArray<u8>(n);
      this.segFirstBlock = new StaticArray<i32>(n);
      this.segBlockCount = new StaticArray<i32>(n);
    }
    if (blocks > this.blkAddress.length) {
      const n = max(blocks, 1);
      this.blkAddress = new StaticArray<f64>(n);
      this.blkSize = new StaticArray<f64>(n);
      this.blkRequested = new StaticArray<f64>(n);
      this.blkState = new StaticArray<u8>(n);
      this.blkTraceId = new StaticArray<i32>(n);
    }
    this.segmentCount = 0;
    this.blockCount = 0;
  }

  beginSegment(address: u64, stream: i32, small: bool, expandable: bool): void {
    const i = this.segmentCount++;
    this.segAddress[i] = <f64>address;
    this.segSize[i] = 0;
    this.segStream[i] = stream;
    this.segSmall[i] = small ? 1 : 0;
    this.segExpandable[i] = expandable ? 1 : 0;
    this.segFirstBlock[i] = this.blockCount;
    this.segBlockCount[i] = 0;
  }

  addBlock(address: u64, size: u64, requested: u64, state: u8, traceId: i32): void {
    const s = this.segmentCount - 1;
    const i = this.blockCount++;
    this.blkAddress[i] = <f64>address;
    this.blkSize[i] = <f64>size;
    this.blkRequested[i] = <f64>requested;
    this.blkState[i] = state;
    this.blkTraceId[i] = traceId;
    this.segSize[s] += <f64>size;
    this.segBlockCount[s]++;
  }
}
