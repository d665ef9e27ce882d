// How much inference memory stays warm: Sirius' reserve rule (reference section A.5) planned with
// its estimate. A model idle for T_idle is evicted (its memory goes to the reserve M_rsv, and past
// 2W back to training down to W); a request for an evicted model is a cold start, served from the
// reserve with probability W / sum(model sizes) (Sirius' alpha = 1 - W / sum), else by asking
// training for memory (an adjustment). With Poisson arrivals of rate lambda, a request finds its
// model evicted with probability exp(-lambda T_idle) (the gap since the last one exceeds T_idle).
//
// The share of requests whose memory comes within the SLO is then
//   P_SLO(W) = 1 - sum_m (lambda_m / Lambda) exp(-lambda_m T_idle) alpha(W) [adjust + fill > SLO]
// and the plan is the least W (in 2 MiB chunks) with P_SLO(W) >= the target. Sirius solves the
// whole M/G/1 chain (queueing behind other requests' execution) for response time; the figure
// here is memory-acquire latency, which does not queue behind execution, so the chain's queue
// states drop out and only the cold-start term stays.
import { CHUNK_BYTES } from "./shared-pool.js";

export interface ReservedModel {
  /** bytes the model holds while warm (weights and its cached request memory) */
  bytes: number;
  ratePerS: number;
}

export interface ReservePlan {
  watermarkBytes: number;
  /** P_SLO at that W, as the estimate gives it */
  estimatedSloShare: number;
  /** the estimate at W = 0 and at W = the sum of the models (every cold start from the reserve) */
  sloShareWithoutReserve: number;
  coldStartShare: number;
}

export function planReserve(models: ReservedModel[], idleS: number, adjustMissesSlo: boolean, target: number): ReservePlan {
  const total = models.reduce((s, m) => s + m.bytes, 0);
  const rate = models.reduce((s, m) => s + m.ratePerS, 0);
  const cold = rate === 0 ? 0 : models.reduce((s, m) => s + (m.ratePerS / rate) * Math.exp(-m.ratePerS * idleS), 0);
  const share = (w: number) => (adjustMissesSlo && total > 0 ? 1 - cold * Math.max(0, 1 - w / total) : 1);
  const chunks = Math.ceil(total / CHUNK_BYTES);
  let lo = 0;
  let hi = chunks;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (share(mid * CHUNK_BYTES) >= target) hi = mid;
    else lo = mid + 1;
  }
  const w = lo * CHUNK_BYTES;
  return { watermarkBytes: w, estimatedSloShare: share(w), sloShareWithoutReserve: share(0), coldStartShare: cold };
}
