// @lakebed/traces: importers for PyTorch memory snapshots into typed event columns.
export { Action, ACTION_NAMES, UseKind } from "./model.js";
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
  PrivatePoolUse,
  AccessColumns,
  AccessJoinSummary,
} from "./model.js";
export { TraceError } from "./trace-error.js";
export { ImportInternalError } from "./import-internal-error.js";
export { readTrace, readTraceSync, parseTrace } from "./read-trace.js";
export type { ReadTraceOptions } from "./read-trace.js";
export { DEFAULT_LIMITS, LIMIT_KEYS, parseLimits } from "./import-limits.js";
export type { ImportLimits } from "./import-limits.js";
export type { PickleDecoderChoice } from "./pickle-input.js";
export { entryScannerAvailable } from "./entry-scanner.js";
// the block-numbering pass in JavaScript and in WebAssembly, exported for the test that compares them
export { numberEvents } from "./block-ids.js";
export { numberEventsWasm } from "./wasm-block-ids.js";
export { AddressTable } from "./address-table.js";
export { writeTraceArrow, traceToArrowBytes, ARROW_FORMAT_VERSION } from "./arrow-format.js";
export { decodePickle } from "./pickle-decoder.js";
export type { DecodeOptions } from "./pickle-decoder.js";
export { ContainerSink, SKIPPED } from "./pickle-shaping.js";
export type { PickleShaper, ContainerKind } from "./pickle-shaping.js";
export { checkDeviceTrace } from "./validate.js";
// operator accesses: the recorder's record, its join to a trace, and coverage
export { readAccessTrace, withAccessRecord, accessRecordBeside } from "./access-trace.js";
export { readAccessRecord, parseAccessRecord, TensorRole } from "./access-record.js";
export type { AccessRecord, RecordedOperator } from "./access-record.js";
export { joinAccessRecord, CLOCK_SLACK_US } from "./access-join.js";
export { checkAccessColumns } from "./access-valid.js";
export { accessCoverage } from "./access-coverage.js";
export type { AccessCoverage } from "./access-coverage.js";
// content fingerprints of read-only memory (python/lakebed_record.py's fingerprint()), for dedup
export { readFingerprints, parseFingerprints, FINGERPRINT_FORMAT, FINGERPRINT_HASH } from "./fingerprints.js";
export type { Fingerprints, FingerprintedStorage } from "./fingerprints.js";
export { fingerprintDocument, chunkDigest } from "./fingerprints-writer.js";
export type { StorageToFingerprint } from "./fingerprints-writer.js";
