import { writeTraceArrow } from "@lakebed/traces";
import { loadTrace } from "../load.js";
import { writeJson, writeHuman } from "../output.js";
import { formatBytes } from "../units.js";
import { statSync } from "node:fs";

export async function convertCommand(file: string, output: string, options: { json?: boolean }): Promise<number> {
  const trace = await loadTrace(file, !options.json);
  await writeTraceArrow(trace, output);
  const events = trace.devices.reduce((n, d) => n + d.events.length, 0);
  const document = { input: file, output, format: "arrow", events, inputBytes: statSync(file).size, outputBytes: statSync(output).size };
  if (options.json) writeJson(document);
  else writeHuman(`${file} -> ${output}: ${events} events, ${formatBytes(document.inputBytes)} -> ${formatBytes(document.outputBytes)} (Arrow IPC file)`);
  return 0;
}
