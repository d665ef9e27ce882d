import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildCorpus, type Corpus } from "./corpus.js";
import { fuzzImporter, type FuzzStats } from "./importer-oracle.js";
import { IMPORTERS } from "./inputs.js";

/**
 * The quick pass of the importer fuzzers: a few hundred inputs per importer with a fixed seed
 * (LAKEBED_SEED and LAKEBED_FUZZ_INPUTS change them). Every input must be accepted as a well-formed
 * trace or rejected with a one-line TraceError naming the file. Long campaigns, with a watchdog for
 * hangs and memory: `node scripts/campaign.mjs --fuzz`.
 */
const SEED = Number(process.env.LAKEBED_SEED ?? 20261123);
const INPUTS = Number(process.env.LAKEBED_FUZZ_INPUTS ?? 400);

const report = (s: FuzzStats) =>
  `${s.importer}: ${s.inputs} inputs (seed ${s.seed}), ${s.accepted} accepted, ${s.rejected} rejected, ${s.failures.length} failures\n` +
  s.failures.slice(0, 5).map((f) => `  input ${f.index} (${f.recipe}): ${f.detail}\n    saved as ${f.savedAs}`).join("\n");

describe("importers take any input without crashing", () => {
  let corpus: Corpus;
  const dir = mkdtempSync(join(tmpdir(), "lakebed-fuzz-"));
  beforeAll(async () => {
    corpus = await buildCorpus("quick");
  });

  for (const importer of IMPORTERS) {
    it(`${importer}: ${INPUTS} inputs, every one accepted or cleanly rejected`, async () => {
      const stats = await fuzzImporter(importer, corpus, { seed: SEED, inputs: INPUTS, dir: join(dir, importer) });
      expect(stats.failures, report(stats)).toEqual([]);
      expect(stats.inputs).toBe(INPUTS);
      expect(stats.rejected).toBeGreaterThan(0);
    });
  }
});
