// @lakebed/api: the typed API behind the lakebed CLI.
export { loadTrace } from "./load.js";
export { describeTrace, allocationEvents } from "./describe.js";
export type { TraceInfo, DeviceInfo } from "./describe.js";
export { replayTrace, resolvePolicy, POLICIES } from "./replay.js";
export type { ReplayRequest, ReplayDocument, DeviceReplayDocument, PolicyName, TieringSummary, ShrinkSummary } from "./replay.js";
// tiering: the stall-capacity sweep and the clock's calibration from a recording (docs/policies.md#tiering)
export { tieringSweep, VICTIMS, STALL_SHARE_TARGET } from "./tiering/tiering-sweep.js";
export type { TieringSweep, TieringPoint, SweepRequest } from "./tiering/tiering-sweep.js";
export { clockCalibrationBeside } from "./tiering/clock-calibration.js";
export { verifyTrace, compareDevice, compareLayouts } from "./verify.js";
export type { VerifyDocument, DeviceVerifyDocument, SegmentMismatch, SegmentEventView } from "./verify.js";
export { parseBytes, formatBytes, formatCount } from "./units.js";
export { findMinCapacity, CAPACITY_STEP_BYTES } from "./capacity-search.js";
export type { MinCapacity } from "./capacity-search.js";
export { replayLive, LiveReplayError, countHeld } from "./live/live-replay.js";
export type { LiveReplayRequest, LiveReplayDocument, LiveDeviceDocument, LiveDeviceRun, LiveBackend, HeldCounts } from "./live/live-replay.js";
export { CallRecorder } from "./live/call-recorder.js";
export { HostTierTap, patternByte, probes } from "./live/host-tier.js";
export type { CopyFigures, RoundTripFigures, LiveShrinkReport } from "./live/host-tier.js";
export type { HostTierDocument } from "./live/live-replay.js";
export type { CallSequence } from "./live/call-recorder.js";
// the Device seam's binding of the Wasm's imports to a driver is native-cuda's; re-exported for live tools
export { bindDriver } from "@lakebed/native-cuda";
export type { BoundDriver } from "@lakebed/native-cuda";
export { firstDivergence } from "./live/call-sequence.js";
export { differentialReplay } from "./live/differential.js";
export type { DifferentialRequest, DifferentialResult, DifferentialDevice } from "./live/differential.js";
export type { CallDivergence } from "./live/call-sequence.js";
// colocation: several traces as tenants of one device (docs/colocate.md)
export { readScenario, parseScenario, ScenarioError } from "./colocate/scenario.js";
export type { Scenario, TenantSpec } from "./colocate/scenario.js";
export { runColocate } from "./colocate/run-colocate.js";
export type { ColocateResult, ColocateOptions } from "./colocate/run-colocate.js";
export { SharedPool } from "./colocate/shared-pool.js";
// seeded randomness (mulberry32): the scenarios' arrivals, and any report whose resampling must give
// the same figures on every run (scripts/torch/steptime-report.mjs)
export { seededRandom } from "./colocate/seeded-random.js";
export type { ChunkBacking, PoolFault } from "./colocate/shared-pool.js";
export type { StrategyName, StrategyRun } from "./colocate/colocate-engine.js";
// the live half: real processes sharing chunks by file descriptor, and a handover (docs/colocate.md)
export { planLiveDedup } from "./colocate/live/dedup-plan.js";
export type { LiveDedupPlan } from "./colocate/live/dedup-plan.js";
export { runLiveDedup } from "./colocate/live/live-dedup.js";
export type { LiveDedupOptions, LiveDedupResult } from "./colocate/live/live-dedup.js";
export { runLiveHandover } from "./colocate/live/handover-live.js";
export type { HandoverMeasured } from "./colocate/live/handover-live.js";
export { main } from "./cli.js";
