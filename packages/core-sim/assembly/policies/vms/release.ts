// vms: giving physical memory back (GMLake's release_block, as release_cached_blocks uses it on
// empty_cache and before the last new-segment attempt of a malloc). Only a segment whose pBlocks
// are all free (one free pBlock spanning it, PyTorch's "unsplit" cached block) can go. Views that
// map its chunks go first: cached ones are dropped, views in use lose their free tail (where
// those chunks must lie) and are dropped when freed.

import { NO_BLOCK, bNext, deleteBlock } from "../../memory/block-table";
import { BY_SIZE, setErase } from "../../memory/free-set";
import { STAT_SEGMENT, STAT_RESERVED_BYTES, NUM_DEVICE_FREE } from "../stats";
import { ACTION_SEGMENT_FREE } from "../../replay/segment-log";
import { VmsSegment } from "./segment";
import { STITCH_ACTIVE, STITCH_PENDING } from "./stitched-view";
import { VmsPolicy } from "./vms";
import { pIsFree } from "./physical-blocks";
import { destroyStitch, truncateStitch } from "./stitch-operations";
import { BROKEN, BROKEN_VMS_RELEASE_KEEPS_RESERVED } from "../broken";

/** Releases every segment that holds nothing; true when one was released. */
export function releaseFreeSegments(p: VmsPolicy): bool {
  let released = false;
  for (let i = 0; i < p.vsegs.length; i++) {
    const seg = unchecked(p.vsegs[i]);
    if (seg == null) continue;
    const head = seg.head;
    if (!pIsFree(head) || bNext(head) != NO_BLOCK) continue;
    releaseSegment(p, seg);
    released = true;
  }
  return released;
}

function releaseSegment(p: VmsPolicy, seg: VmsSegment): void {
  for (let c = 0; c < seg.chunks; c++) {
    while (seg.viewCount(c) > 0) {
      const st = p.stitch(unchecked(changetype<Array<i32>>(unchecked(seg.views[c]))[0]));
      if (st.state == STITCH_ACTIVE || st.state == STITCH_PENDING) truncateStitch(p, st);
      else destroyStitch(p, st);
    }
  }
  p.pFree = setErase(BY_SIZE, p.pFree, seg.head);
  deleteBlock(seg.head);
  const bytes = seg.bytes();
  p.log.record(ACTION_SEGMENT_FREE, seg.base, bytes);
  seg.release(p.device);
  p.totalAllocatedBytes -= bytes;
  p.stats.decrease(STAT_SEGMENT, false, 1);
  if (BROKEN != BROKEN_VMS_RELEASE_KEEPS_RESERVED) p.stats.decrease(STAT_RESERVED_BYTES, false, bytes); // broken.ts
  p.stats.count(NUM_DEVICE_FREE);
  unchecked((p.vsegs[seg.id] = null));
  p.liveSegments--;
}
