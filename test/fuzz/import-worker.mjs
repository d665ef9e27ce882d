// A worker thread that imports fuzz inputs for isolated-importer.ts, so that an input that hangs
// the importer or exhausts its memory can be stopped (worker.terminate) without stopping the fuzzer.
// Plain JavaScript: it runs outside vitest's transform and inside the campaign alike.
import { writeFileSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import { parseTrace, readTrace, TraceError } from "@lakebed/traces";

parentPort.on("message", async ({ id, bytes, file, viaFile, limits, windowBytes }) => {
  try {
    let trace;
    if (viaFile) {
      writeFileSync(file, bytes);
      trace = await readTrace(file, { limits, windowBytes });
    } else {
      trace = parseTrace(bytes, file, { limits, windowBytes });
    }
    parentPort.postMessage({ id, kind: "trace", trace });
  } catch (e) {
    parentPort.postMessage({
      id,
      kind: "error",
      traceError: e instanceof TraceError,
      // a JavaScript error the importer turned into its "internal error" line: still a failure
      internal: e?.internal === true,
      name: e?.name ?? typeof e,
      message: String(e?.message ?? e),
    });
  }
});
