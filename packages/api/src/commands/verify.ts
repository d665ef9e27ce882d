import { loadTrace } from "../load.js";
import { startProgress } from "../progress.js";
import { renderTable } from "../table.js";
import { parseCapacity, parsePolicy } from "./option-values.js";
import { printable } from "../terminal-text.js";
import { verifyTrace, type SegmentEventView } from "../verify.js";
import { writeHuman, writeJson } from "../output.js";

export async function verifyCommand(file: string, options: { capacity?: string; policy?: string; json?: boolean }): Promise<number> {
  const capacityBytes = parseCapacity(options.capacity);
  const policy = parsePolicy(options.policy);
  const trace = await loadTrace(file, !options.json);
  const progress = startProgress("verify", "events", !options.json);
  let document;
  try {
    document = verifyTrace(trace, { policy, capacityBytes, onProgress: (done, total) => progress.update(done, total) });
  } finally {
    progress.stop();
  }
  if (options.json) {
    writeJson(document);
    return document.match ? 0 : 1;
  }
  if (document.reason && document.devices.length === 0) {
    writeHuman(`${printable(file)}: cannot be verified: ${printable(document.reason)}`);
    return 1;
  }
  const describe = (e: SegmentEventView | null) =>
    e ? `${e.action} 0x${e.addr.toString(16)} ${e.size} B after ${e.requestsBefore} requests (event ${e.eventIndex})` : "nothing";
  // whose segment events the trace holds: PyTorch's, or the library's under the policy it names
  const recorder = document.recordedPolicy ? `the library (${document.recordedPolicy})` : "PyTorch";
  const lines = [
    `${printable(file)}: ${document.match ? "MATCH" : "MISMATCH"} (policy ${document.policy})`,
    renderTable(
      ["device", "start", "segment events matched", "final layout"],
      document.devices.map((d) => [d.device, d.complete ? "empty" : "rebuilt", d.segmentEventsCompared, d.finalStateMatches ? "matches" : "differs"]),
    ),
  ];
  for (const d of document.devices) {
    if (d.firstMismatch) {
      lines.push(
        `device ${d.device}: first diverging segment event #${d.firstMismatch.position}: ${recorder} did ${describe(d.firstMismatch.expected)}; the emulator did ${describe(d.firstMismatch.actual)}`,
      );
    }
    if (d.finalStateDifference) lines.push(`device ${d.device}: final layout: ${printable(d.finalStateDifference)}`);
  }
  if (document.reason) lines.push(`why: ${printable(document.reason)}`);
  writeHuman(lines.join("\n"));
  return document.match ? 0 : 1;
}
