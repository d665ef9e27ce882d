// The device calls by index in the Wasm's call counters (assembly/device/device.ts), named as
// packages/native-cuda's CALL_KINDS names the same driver calls.
export const DEVICE_CALL_NAMES: readonly string[] = [
  "memCreate",
  "memRelease",
  "addressReserve",
  "addressFree",
  "map",
  "setAccess",
  "unmap",
  "malloc",
  "free",
  "copyToHost",
  "copyFromHost",
  "memset",
  "memGetInfo",
  "hostReserve",
  "copyOut",
  "copyIn",
  "hostRelease",
];
