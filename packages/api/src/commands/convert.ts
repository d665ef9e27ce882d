import { writeTraceArrow } from "@lakebed/traces";
import { loadTrace } from "../load.js";
import { writeJson, writeHuman } from "../output.js";
import { formatBytes } from "../units.js";
import { printable } from "../terminal-text.js";
import { UsageError, quoted } from "../usage-error.js";
import { statSync } from "node:fs";

export async function convertCommand(file: string, output: string, options: { json?: boolean }): Promise<number> {
  refuseOverwritingInput(file, output);
  // a snapshot's operator record (NAME.access.json.gz beside it) goes into the Arrow file as use events
  const trace = await loadTrace(file, !options.json, { withAccess: true });
  await writeTraceArrow(trace, output);
  const events = trace.devices.reduce((n, d) => n + d.events.length, 0);
  const document = { input: file, output, format: "arrow", events, inputBytes: statSync(file).size, outputBytes: statSync(output).size };
  if (options.json) writeJson(document);
  else writeHuman(`${printable(file)} -> ${printable(output)}: ${events} events, ${formatBytes(document.inputBytes)} -> ${formatBytes(document.outputBytes)} (Arrow IPC file)`);
  return 0;
}

/**
 * `convert X X` (or X and a link to it) would replace the snapshot with its conversion: refused
 * before anything is read. Same file = same device and inode, which also catches another spelling
 * of the path and hard links; an output that does not exist yet is never the input.
 */
function refuseOverwritingInput(file: string, output: string): void {
  let input, target;
  try {
    input = statSync(file);
    target = statSync(output);
  } catch {
    return; // a missing input is the reader's one-line error; a missing output is a new file
  }
  if (input.dev === target.dev && input.ino === target.ino) {
    throw new UsageError(`convert: the output ${quoted(output)} is the input file ${quoted(file)}; give another output path`);
  }
}
