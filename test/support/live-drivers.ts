// Which live drivers the tests can use here. Host memory works on any Linux machine; the cuda driver
// needs an NVIDIA GPU and driver, and tests that use it skip, saying why, where doctor() says no.
import { doctor } from "@lakebed/native-cuda";
import type { LiveBackend } from "@lakebed/api";

const report = doctor();

export const hostAvailable = report.drivers.host.available;
export const cudaAvailable = report.drivers.cuda.available;
/** Why the cuda tests skip here ("" where they run). */
export const cudaSkipReason = cudaAvailable ? "" : report.drivers.cuda.reason;

/** The live backends to run: host, and cuda where a GPU is present. */
export const liveBackends: LiveBackend[] = [...(hostAvailable ? (["host"] as const) : []), ...(cudaAvailable ? (["cuda"] as const) : [])];

/** A test title that says why cuda is not in it. */
export function withBackends(title: string): string {
  return `${title} (${liveBackends.join(", ")}${cudaAvailable ? "" : `; cuda skipped: ${cudaSkipReason}`})`;
}
