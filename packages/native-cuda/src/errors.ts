// The one error class of this package. The native addon throws it too (loader.ts registers it
// with the addon), so every failure, from JS validation or from the driver, has the same type.

/** What went wrong, as a stable code. */
export type DeviceErrorCode =
  /** an argument or the driver's state refused the call before the driver was called */
  | "INVALID"
  /** the driver answered out of memory where that is an error (memCreate/malloc return OOM) */
  | "OUT_OF_MEMORY"
  /** the driver call itself failed; `driverError` holds the driver's code */
  | "DRIVER"
  /** fault injection (`failEvery`) made this call fail */
  | "INJECTED"
  /** the driver was torn down */
  | "CLOSED"
  /** this kind of driver cannot open on this machine (see `doctor()`) */
  | "UNAVAILABLE"
  /** the native addon could not be loaded */
  | "LOAD";

export interface DeviceErrorDetails {
  /** the device call: "map", "memCreate", ... or "open"/"load" */
  call: string;
  /** "host", "cuda", or "native" before a driver exists */
  driver: string;
  code: DeviceErrorCode;
  /** the driver's own error name: "CUDA_ERROR_INVALID_VALUE", "ENOMEM", "" when none */
  driverError: string;
}

export class DeviceError extends Error {
  readonly call: string;
  readonly driver: string;
  readonly code: DeviceErrorCode;
  readonly driverError: string;

  constructor(message: string, details: DeviceErrorDetails) {
    super(message);
    this.name = "DeviceError";
    this.call = details.call;
    this.driver = details.driver;
    this.code = details.code;
    this.driverError = details.driverError;
  }
}

export function invalid(driver: string, call: string, message: string): DeviceError {
  return new DeviceError(`${driver}.${call}: ${message}`, {
    call,
    driver,
    code: "INVALID",
    driverError: "",
  });
}
