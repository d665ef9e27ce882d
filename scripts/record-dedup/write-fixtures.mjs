// Writes the generated fingerprint fixtures (synthetic-fingerprints.mjs) into OUTDIR:
//   node scripts/record-dedup/write-fixtures.mjs test/fixtures/scenarios/dedup
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { syntheticFingerprints } from "./synthetic-fingerprints.mjs";

const out = process.argv[2];
if (!out) throw new Error("usage: write-fixtures.mjs OUTDIR");
mkdirSync(out, { recursive: true });
const write = (name, doc) => writeFileSync(join(out, name), JSON.stringify(doc) + "\n");
write("llama_infer.fingerprints.json", syntheticFingerprints({ baseSeed: 1 }));
write("llama_lora_a.fingerprints.json", syntheticFingerprints({ baseSeed: 1, adapterSeed: 101 }));
write("llama_lora_b.fingerprints.json", syntheticFingerprints({ baseSeed: 1, adapterSeed: 202 }));
