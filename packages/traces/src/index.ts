// @lakebed/traces: importers for PyTorch memory snapshots into typed event columns.
export { Action, ACTION_NAMES } from "./model.js";
export type {
  EventColumns,
  BlockState,
  BlockStateKind,
  SegmentState,
  DeviceTrace,
  AllocatorSettings,
  TraceFormat,
  Trace,
  Annotation,
} from "./model.js";
export { TraceError } from "./trace-error.js";
