// @lakebed/native-cuda: the native Device drivers (CUDA virtual memory API and host memfd).
export { openDriver, OOM } from "./driver.js";
export type {
  DirectCalls,
  Driver,
  DriverCounters,
  DriverInfo,
  DriverKind,
  FailEvery,
  LeakReport,
  MemInfo,
  NativeCallTimes,
  OpenDriverOptions,
  TeardownReport,
} from "./driver.js";
export { DeviceError } from "./errors.js";
export type { DeviceErrorCode, DeviceErrorDetails } from "./errors.js";
export { CALL_KINDS } from "./call-kinds.js";
export type { CallKind } from "./call-kinds.js";
export { doctor } from "./doctor.js";
// carrying chunk handles between processes (colocate's live half)
export { FD_BATCH, MAX_FDS_PER_MESSAGE, MAX_MESSAGE_BYTES, POLLHUP, POLLIN, recvMessage, sendMessage, shareSockets } from "./share.js";
export type { ShareSockets } from "./share.js";
// the Device seam: core-sim's Wasm device imports bound to a Driver
export { bindDriver } from "./wasm-imports.js";
export type { BoundDriver, CallSink, MemorySampler, WasmDeviceImports } from "./wasm-imports.js";
export type { DoctorReport, DriverAvailability } from "./doctor.js";
