// What a driver call costs, read from core-sim's cost model (assembly/device/cost-model.ts, the one
// copy of the H100 table) through its costCallMicros export: the colocate pool keeps its own books
// outside the Wasm, so it asks the model instead of restating the figures.
import { DEVICE_CALL_NAMES, instantiate, type CoreSimExports } from "@lakebed/core-sim";

export type DriverCall = "memCreate" | "memRelease" | "map" | "setAccess" | "unmap" | "malloc" | "free" | "memset";

let model: CoreSimExports | null = null;
const kinds = new Map<DriverCall, number>();

/** Simulated microseconds of one call on `bytes` (setAccess and unmap: one mapping of `bytes`). */
export function driverMicros(call: DriverCall, bytes: number): number {
  model ??= instantiate();
  let kind = kinds.get(call);
  if (kind === undefined) {
    kind = DEVICE_CALL_NAMES.indexOf(call);
    if (kind < 0) throw new Error(`@lakebed/core-sim names no driver call '${call}'`);
    kinds.set(call, kind);
  }
  return model.costCallMicros(kind, bytes);
}
