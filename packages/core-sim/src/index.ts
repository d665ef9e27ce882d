// @lakebed/core-sim: GPU memory policies compiled to WebAssembly (PyTorch's caching allocator and
// its expandable segments, GMLake's stitching, lakebed's own), a simulated device, and the replay loop.
export { replayDevice, useEventsMissing, DeviceReplay, H100_TOTAL_BYTES, modelCapacityBytes } from "./replay-device.js";
export type { ReplayOptions, DeviceReplayResult, DeviceCallLog, SegmentEvent, Timeline } from "./replay-device.js";
export type { StartStateReport, StateCounts } from "./start-state-report.js";
export { computationClock, hostArenaBytes, shrinkPositions, type ClockCalibration, type ShrinkRequest } from "./use-clock.js";
export { PolicyInternalError } from "./policy-internal-error.js";
// The policies, each declared once (also the package's light `./policies` entry).
export { POLICY_REGISTRY, POLICY_NAMES, isPolicyName, policyEntry, invariantName } from "./policy-registry.js";
export type { PolicyName, PolicyEntry, PolicySetting, InvariantRange } from "./policy-registry.js";
export type { DeviceImports, CoreSimExports } from "./wasm.js";
// The loader, for driving a policy one request at a time (the property harness in test/property).
export { instantiate, applyConf, wasmModule, POLICY_CODES, DEVICE_SIMULATED } from "./wasm.js";
export { parseAllocConf, confFromSettings, defaultAllocConf, defaultGmlakeConf, ROUNDUP_BUCKETS } from "./conf.js";
export type { AllocatorConf, GmlakeConf, LakebedConf, TieringConf, TieringVictim } from "./conf.js";
export { STAT_NAMES } from "./stats-table.js";
export { DEVICE_CALL_NAMES } from "./device-calls.js";
export { sizingRules } from "./sizing.js";
export type { SizingRules } from "./sizing.js";
