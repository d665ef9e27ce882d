import { gzipSync } from "node:zlib";
import type { Corpus } from "./corpus.js";
import { randomBytes, randomJson, randomPickle, randomSnapshotDict } from "./garbage.js";
import { concat, mutateBytes } from "./mutate-bytes.js";
import { mutateValue, toJsonText } from "./mutate-values.js";
import { writePickle } from "./pickle-writer.js";
import { encodeShape, hostileShape } from "./hostile-shapes.js";
import { arrowHostileShape } from "./arrow-hostile-shapes.js";
import { Rng } from "../support/random.js";
import type { ImportLimits } from "@lakebed/traces";

/**
 * Fuzz input k of a campaign with seed s, for one importer: a pure function of (corpus, s, k), so a
 * failing input is rebuilt from the numbers printed with it. `recipe` says how it was made.
 */
export type Importer = "pickle" | "json" | "arrow";
export const IMPORTERS: readonly Importer[] = ["pickle", "json", "arrow"];

export interface FuzzInput {
  /** file extension the input is written with (the importer is chosen by it) */
  extension: string;
  bytes: Uint8Array;
  recipe: string;
  /** the importer's limits to read it with (hostile-shapes.ts lowers some); the defaults when absent */
  limits?: Partial<ImportLimits>;
}

const PROTOCOLS = [2, 3, 4, 5] as const;
/** the share of pickle and JSON inputs drawn from the hostile shapes (hostile-shapes.ts) */
const HOSTILE_SHARE = 0.06;
/** the share of Arrow inputs drawn from arrow-hostile-shapes.ts (their eight classes need more) */
const ARROW_HOSTILE_SHARE = 0.2;
const utf8 = new TextEncoder();

export function makeInput(importer: Importer, corpus: Corpus, seed: number, index: number): FuzzInput {
  const rng = new Rng(seed, index);
  if (importer !== "arrow" && rng.chance(HOSTILE_SHARE)) return hostileInput(rng, importer === "pickle");
  if (importer === "arrow" && rng.chance(ARROW_HOSTILE_SHARE)) {
    const seed = rng.pick(corpus.arrows);
    const shape = arrowHostileShape(seed.bytes, seed.name, rng);
    return { extension: ".arrow", bytes: shape.bytes, recipe: shape.recipe, limits: shape.limits };
  }
  const roll = rng.below(100);
  switch (importer) {
    case "pickle":
      return pickleInput(corpus, rng, roll);
    case "json":
      return jsonInput(corpus, rng, roll);
    case "arrow":
      return arrowInput(corpus, rng, roll);
  }
}

function hostileInput(rng: Rng, pickle: boolean): FuzzInput {
  const shape = hostileShape(rng, pickle);
  const protocol = rng.pick(PROTOCOLS);
  const extension = (pickle ? ".pickle" : ".json") + (shape.gzipPadding === undefined ? "" : ".gz");
  return { extension, bytes: encodeShape(shape, pickle, protocol), recipe: pickle ? `${shape.recipe}.p${protocol}` : shape.recipe, limits: shape.limits };
}

function pickleInput(corpus: Corpus, rng: Rng, roll: number): FuzzInput {
  const others = corpus.pickles.map((s) => s.bytes);
  if (roll < 45) {
    const seed = rng.pick(corpus.pickles);
    return { extension: ".pickle", bytes: mutateBytes(seed.bytes, rng, others), recipe: `bytes(${seed.name})` };
  }
  if (roll < 70) {
    const seed = rng.pick(corpus.dicts);
    const protocol = rng.pick(PROTOCOLS);
    return { extension: ".pickle", bytes: writePickle(mutateValue(seed.dict, rng), protocol), recipe: `values(${seed.name}).p${protocol}` };
  }
  if (roll < 80) return { extension: ".pickle", bytes: randomPickle(rng), recipe: "random-opcodes" };
  if (roll < 85) return { extension: ".pickle", bytes: randomBytes(rng), recipe: "random-bytes" };
  if (roll < 90) return { extension: ".pickle", bytes: writePickle(randomSnapshotDict(rng), rng.pick(PROTOCOLS)), recipe: "random-snapshot" };
  const seed = rng.pick(corpus.pickles);
  if (roll < 95) return { extension: ".pickle.gz", bytes: gzipSync(mutateBytes(seed.bytes, rng, others), { level: 1 }), recipe: `gzip(bytes(${seed.name}))` };
  return { extension: ".pickle.gz", bytes: mutateBytes(gzipSync(seed.bytes, { level: 1 }), rng), recipe: `bytes(gzip(${seed.name}))` };
}

function jsonInput(corpus: Corpus, rng: Rng, roll: number): FuzzInput {
  const others = corpus.jsons.map((s) => s.bytes);
  if (roll < 40) {
    const seed = rng.pick(corpus.jsons);
    return { extension: ".json", bytes: mutateBytes(seed.bytes, rng, others), recipe: `bytes(${seed.name})` };
  }
  if (roll < 70) {
    const seed = rng.pick(corpus.dicts);
    return { extension: ".json", bytes: utf8.encode(jsonTextOrTruncated(mutateValue(seed.dict, rng))), recipe: `values(${seed.name})` };
  }
  if (roll < 80) return { extension: ".json", bytes: randomJson(rng), recipe: "random-json" };
  if (roll < 90) return { extension: ".json", bytes: utf8.encode(toJsonText(randomSnapshotDict(rng))), recipe: "random-snapshot" };
  if (roll < 95) return { extension: ".json", bytes: randomBytes(rng), recipe: "random-bytes" };
  const seed = rng.pick(corpus.jsons);
  return { extension: ".json.gz", bytes: gzipSync(mutateBytes(seed.bytes, rng, others), { level: 1 }), recipe: `gzip(bytes(${seed.name}))` };
}

/**
 * The JSON text of a mutated value; a mutation that shares one subtree many times can make it longer
 * than a JavaScript string (JSON repeats what a pickle references), which stopped a campaign in its
 * own generator: such a value is written as the text cut short, itself a fine fuzz input.
 */
function jsonTextOrTruncated(value: unknown): string {
  try {
    return toJsonText(value);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    return toJsonText({ segments: [], device_traces: [[]] }).slice(0, -2);
  }
}

function arrowInput(corpus: Corpus, rng: Rng, roll: number): FuzzInput {
  const others = corpus.arrows.map((s) => s.bytes);
  const seed = rng.pick(corpus.arrows);
  if (roll < 75) return { extension: ".arrow", bytes: mutateBytes(seed.bytes, rng, others), recipe: `bytes(${seed.name})` };
  if (roll < 90) return { extension: ".arrow", bytes: mutateMetadata(seed.bytes, rng), recipe: `metadata(${seed.name})` };
  if (roll < 95) return { extension: ".arrow", bytes: concat(utf8.encode("ARROW1\0\0"), randomBytes(rng)), recipe: "random-bytes" };
  return { extension: ".arrow", bytes: seed.bytes.slice(0, rng.below(seed.bytes.length)), recipe: `truncate(${seed.name})` };
}

/**
 * Mutates the JSON held in an Arrow file's schema metadata in place, keeping its length (so the
 * flatbuffer framing stays valid and the importer's reading of the JSON itself is reached): a digit
 * changed, a quote or bracket broken, a key renamed.
 */
function mutateMetadata(bytes: Uint8Array, rng: Rng): Uint8Array {
  const b = bytes.slice();
  const text = new TextDecoder("latin1").decode(b);
  const starts: number[] = [];
  for (let i = text.indexOf("{\""); i >= 0 && starts.length < 64; i = text.indexOf("{\"", i + 1)) starts.push(i);
  if (starts.length === 0) return mutateBytes(b, rng);
  const rounds = rng.range(1, 4);
  for (let r = 0; r < rounds; r++) {
    const at = rng.pick(starts) + rng.skewed(2000);
    if (at >= b.length) continue;
    const c = b[at];
    if (c >= 0x30 && c <= 0x39) b[at] = rng.pick([0x30, 0x39, 0x2d, 0x2e, 0x65]); // digit -> 0, 9, '-', '.', 'e'
    else b[at] = rng.pick([0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x20, 0x78, 0x00]);
  }
  return b;
}
