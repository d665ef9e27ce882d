import fc from "fast-check";
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parseTrace, readTrace, traceToArrowBytes } from "@lakebed/traces";
import { workloadArb } from "../generators/workloads.js";
import { programToSnapshotJson } from "../property/trace-file.js";
import { publicTraces, recordedTraces, repoRoot } from "../support/shared-traces.js";
import { writePickle } from "./pickle-writer.js";
import { snapshotDictFromTrace } from "./snapshot-dict.js";
import { toJsonText } from "./mutate-values.js";

/**
 * Seeds for the importer fuzzers, all derived in code from the real traces (never edited on disk):
 *  - the real pickle files themselves, where small enough to import thousands of times;
 *  - each real trace cut to its last 64 and 512 entries (a wrapped ring buffer, see snapshot-dict.ts),
 *    as a dictionary, written as pickles of every protocol 2-5, as JSON, and converted to Arrow;
 *  - snapshots of generated programs (../generators), for shapes the real traces lack.
 * "quick" uses the sample trace in the repository and the two smallest public pickles; "full" uses
 * every trace in ../shared/traces.
 */
export interface Seed {
  name: string;
  bytes: Uint8Array;
}

export interface Corpus {
  /** snapshot dictionaries, for mutations of meaning before writing */
  dicts: { name: string; dict: Record<string, unknown> }[];
  pickles: Seed[];
  jsons: Seed[];
  arrows: Seed[];
}

/** raw real pickles above this size are left out of byte mutation (they would slow every input) */
const RAW_SEED_LIMIT_BYTES = 1 << 20;
const CUTS = [64, 512];
const PROTOCOLS = [2, 3, 4, 5] as const;

export async function buildCorpus(kind: "quick" | "full"): Promise<Corpus> {
  const files =
    kind === "full"
      ? [...recordedTraces().map((t) => t.file), ...publicTraces()]
      : [join(repoRoot, "samples/two_streams.def.pickle.gz"), ...publicTraces().filter((f) => /legacy_oom|silmont/.test(f))];
  const corpus: Corpus = { dicts: [], pickles: [], jsons: [], arrows: [] };

  for (const file of files) {
    const name = basename(file).replace(/\.pickle(\.gz)?$/, "");
    const raw = file.endsWith(".gz") ? gunzipSync(readFileSync(file)) : readFileSync(file);
    if (raw.length <= RAW_SEED_LIMIT_BYTES) corpus.pickles.push({ name: `${name}.real`, bytes: new Uint8Array(raw) });
    const trace = await readTrace(file);
    for (const cut of CUTS) corpus.dicts.push({ name: `${name}.last${cut}`, dict: snapshotDictFromTrace(trace, cut) });
  }
  const programs = fc.sample(workloadArb, { seed: 4242, numRuns: kind === "full" ? 24 : 8 });
  programs.forEach((w, i) => corpus.dicts.push({ name: `generated.${w.kind}.${i}`, dict: JSON.parse(programToSnapshotJson(w.ops.slice(0, 400))) }));

  corpus.dicts.forEach(({ name, dict }, i) => {
    const protocol = PROTOCOLS[i % PROTOCOLS.length];
    corpus.pickles.push({ name: `${name}.p${protocol}`, bytes: writePickle(dict, protocol) });
    corpus.jsons.push({ name: `${name}.json`, bytes: new TextEncoder().encode(toJsonText(dict)) });
  });
  for (const seed of corpus.jsons) {
    corpus.arrows.push({ name: seed.name.replace(/json$/, "arrow"), bytes: traceToArrowBytes(parseTrace(seed.bytes, seed.name)) });
  }
  return corpus;
}
