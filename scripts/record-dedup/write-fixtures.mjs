// Writes the generated fingerprint fixtures (synthetic-fingerprints.mjs) into OUTDIR, joined to the
// recorded traces of test/fixtures/access (the parameters at the addresses of their blocks):
//   node scripts/record-dedup/write-fixtures.mjs test/fixtures/scenarios/dedup
import { mkdirSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { readTrace } from "@lakebed/traces";
import { syntheticFingerprints } from "./synthetic-fingerprints.mjs";

const out = process.argv[2];
if (!out) throw new Error("usage: write-fixtures.mjs OUTDIR");
const access = join(dirname(fileURLToPath(import.meta.url)), "../../test/fixtures/access");
const infer = (await readTrace(join(access, "llama_infer.def.pickle.gz"))).devices[0];
const lora = (await readTrace(join(access, "llama_lora.exp.pickle.gz"))).devices[0];
mkdirSync(out, { recursive: true });
const write = (name, doc) => writeFileSync(join(out, name), JSON.stringify(doc) + "\n");
write("llama_infer.fingerprints.json", syntheticFingerprints({ baseSeed: 1, device: infer }));
write("llama_lora_a.fingerprints.json", syntheticFingerprints({ baseSeed: 1, adapterSeed: 101, device: lora }));
write("llama_lora_b.fingerprints.json", syntheticFingerprints({ baseSeed: 1, adapterSeed: 202, device: lora }));
