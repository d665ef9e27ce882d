// The stall estimate: how much of the tier's transfer time the computation between uses cannot
// hide. docs/policies.md ("tiering: the stall estimate") says where the computation time comes
// from; here is what is done with it.
//
// Time is the trace's computation clock (UseColumns.clockAt, µs at each event position) plus the
// stall so far: a stall delays everything after it. Two copy lanes, one per direction, each doing
// one copy at a time (a copy engine per direction, as an H100's PCIe link has). Pages move in runs
// of adjacent pages, one copy per run (tiering.ts evictRun, fetchRun); a run's lane time is its copy,
// charged by its size (cost-model.ts copyMicros: the measured bandwidth by size, so a run of eight
// pages costs one copy's latency, not eight), plus the driver calls around each of its pages (unmap
// and release after a copy out; create, map and set access before a copy in). When both lanes are
// busy at once a copy takes the duplex rate (duplexCopyMicros at 2 MiB, as a factor on the copy).
//
//   out  A run can be copied out from the moment the blocks on all its pages were last touched (tA,
//        the latest lastTouch of its pages; their bytes do not change after), as a write-back of
//        cold pages ahead of need would; its chunks are free when the copy and the calls end. If
//        that is later than the moment the chunks are needed, the operator waits: stall.
//   in   A run is brought back just in time for its use at position q: the copy starts as late as
//        it can and still end at T(q), but not before the in lane is free, its pages' own copies
//        out ended, and the chunks it goes into are free. Whatever ends after T(q) is stall.
//
// So a page evicted right after its use and needed again soon (thrashing), a victim used a moment
// ago, and bursts of transfers that exceed the computation around them all stall; transfers spread
// over long idle stretches do not. The policy calls this for every run it moves; with no clock
// (a trace without time) the stall is NaN and only bytes and transfer seconds are reported.

import { callMicros, copyMicros, duplexCopyMicros } from "../../device/cost-model";
import {
  CALL_COPY_OUT, CALL_COPY_IN, CALL_UNMAP, CALL_MEM_RELEASE, CALL_MEM_CREATE, CALL_MAP, CALL_SET_ACCESS,
} from "../../device/device";
import { UseColumns } from "../../replay/uses";
import { PAGE_BYTES } from "./tier-arena";

export class TransferClock {
  private uses: UseColumns | null = null;
  /** µs of stall so far (NaN without a clock) */
  stallMicros: f64 = 0;
  /** µs of copies alone, each way (the cost model's copy time, no driver calls) */
  outCopyMicros: f64 = 0;
  inCopyMicros: f64 = 0;
  private outFree: f64 = -Infinity;
  private inFree: f64 = -Infinity;
  private readonly outCallsUs: f64 = callMicros(CALL_UNMAP, PAGE_BYTES) + callMicros(CALL_MEM_RELEASE, PAGE_BYTES);
  private readonly inCallsUs: f64 = callMicros(CALL_MEM_CREATE, PAGE_BYTES) + callMicros(CALL_MAP, PAGE_BYTES) + callMicros(CALL_SET_ACCESS, PAGE_BYTES);
  /** a copy's time when the other lane is busy too, over its time alone */
  private readonly duplexFactor: f64 = duplexCopyMicros(PAGE_BYTES, PAGE_BYTES) / (copyMicros(CALL_COPY_OUT, PAGE_BYTES) + copyMicros(CALL_COPY_IN, PAGE_BYTES)) * 2;

  setClock(uses: UseColumns): void {
    this.uses = uses;
    if (uses.clockLength == 0 || isNaN(uses.clockAt(0))) this.stallMicros = NaN;
  }

  /** T(position): the computation clock there, shifted by the stall so far; NaN without a clock. */
  @inline private at(position: i32): f64 {
    const uses = this.uses;
    if (uses == null) return NaN;
    const p = min(max(position, 0), uses.clockLength - 1);
    return uses.clockAt(p) + this.stallMicros;
  }

  /**
   * A run of `pages` adjacent pages, the blocks on which were last touched at position `lastTouch`
   * at the latest, is copied out in one copy because position `now` needs their chunks; returns
   * when the chunks are free (on this clock).
   */
  runOut(lastTouch: i32, now: i32, pages: i32): f64 {
    const copyUs = copyMicros(CALL_COPY_OUT, <u64>pages * PAGE_BYTES);
    this.outCopyMicros += copyUs;
    const need = this.at(now);
    if (isNaN(need)) return NaN;
    let start = max(this.at(lastTouch), this.outFree);
    const copy = start < this.inFree ? copyUs * this.duplexFactor : copyUs;
    const end = start + copy + <f64>pages * this.outCallsUs;
    this.outFree = end;
    if (end > need) this.stallMicros += end - need;
    return end;
  }

  /**
   * A run of `pages` adjacent pages, whose copies out had all ended at `outEnd`, comes back in one
   * copy into chunks free from `chunkFree`, for a use at position `now`.
   */
  runIn(outEnd: f64, chunkFree: f64, now: i32, pages: i32): void {
    const copyUs = copyMicros(CALL_COPY_IN, <u64>pages * PAGE_BYTES);
    this.inCopyMicros += copyUs;
    const need = this.at(now);
    if (isNaN(need)) return;
    const calls = <f64>pages * this.inCallsUs;
    let start = max(need - copyUs - calls, this.inFree);
    if (!isNaN(outEnd)) start = max(start, outEnd);
    if (!isNaN(chunkFree)) start = max(start, chunkFree);
    const copy = start < this.outFree ? copyUs * this.duplexFactor : copyUs;
    const end = start + copy + calls;
    this.inFree = end;
    if (end > need) this.stallMicros += end - need;
  }
}
