import { describe, expect, it } from "vitest";
import { basename } from "node:path";
import { readTrace } from "@lakebed/traces";
import { verifyTrace } from "@lakebed/api";
import { haveSharedTraces, publicTraces } from "./support/shared-traces.js";

/**
 * Snapshots other people committed to public repositories, on other GPUs and PyTorch versions, most of
 * them cut by the ring buffer: each one verifies, or `verify` gives the documented reason it cannot.
 */
const CANNOT_VERIFY: Record<string, RegExp> = {
  // PyTorch 2.0's format: the allocator state with each block's history, no trace of events
  "llm_inference.legacy_oom.pickle": /^legacy PyTorch 2\.0 snapshot: it holds the allocator state but no trace/,
};

describe.skipIf(!haveSharedTraces)("public traces verify or say why not", () => {
  for (const file of publicTraces()) {
    const name = basename(file);
    it(name, async () => {
      const document = verifyTrace(await readTrace(file), {});
      if (CANNOT_VERIFY[name]) {
        expect(document.match).toBe(false);
        expect(document.reason).toMatch(CANNOT_VERIFY[name]);
        return;
      }
      expect(document.reason).toBeUndefined();
      expect(document.devices.map((d) => [d.firstMismatch, d.finalStateDifference])).toEqual(document.devices.map(() => [null, null]));
      expect(document.match).toBe(true);
    });
  }
});
