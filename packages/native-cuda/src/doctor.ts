// doctor(): which drivers can open on this machine, and why not, in one line each.
import type { DriverKind } from "./driver.js";
import { loadAddon } from "./loader.js";

export interface DriverAvailability {
  available: boolean;
  /** empty when available; else one line saying why not */
  reason: string;
  /** cuda only, when available */
  devices?: number;
  /** cuda only, when available: e.g. 13000 for CUDA 13.0 */
  driverVersion?: number;
}

export interface DoctorReport {
  addon: { loaded: boolean; path: string | null; error: string | null };
  drivers: Record<DriverKind, DriverAvailability>;
}

export function doctor(): DoctorReport {
  let loaded;
  try {
    loaded = loadAddon();
  } catch (err) {
    const message = (err as Error).message;
    const reason = "the native addon is not loaded (see addon.error)";
    return {
      addon: { loaded: false, path: null, error: message },
      drivers: { host: { available: false, reason }, cuda: { available: false, reason } },
    };
  }
  return {
    addon: { loaded: true, path: loaded.path, error: null },
    drivers: { host: loaded.binding.probe("host"), cuda: loaded.binding.probe("cuda") },
  };
}
