import { doctor } from "@lakebed/native-cuda";
import { writeHuman, writeJson } from "../output.js";

/** `lakebed doctor`: which native drivers load on this machine, and why not. */
export async function doctorCommand(options: { json?: boolean }): Promise<number> {
  const report = doctor();
  if (options.json) {
    writeJson(report);
    return 0;
  }
  const lines = [
    `native addon: ${report.addon.loaded ? `loaded from ${report.addon.path}` : `not loaded: ${report.addon.error}`}`,
    "simulated device (sim): always available",
  ];
  for (const [name, d] of Object.entries(report.drivers)) {
    lines.push(`${name} driver: ${d.available ? "available" : "unavailable"}${d.reason ? ` (${d.reason})` : ""}`);
  }
  writeHuman(lines.join("\n"));
  return 0;
}
