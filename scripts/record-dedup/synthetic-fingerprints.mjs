// Generated fingerprint fixtures for CI (no GPU, no PyTorch): the parameters of the model that
// scripts/record-access/workloads.py records (Llama-style 1024 x 8 layers, GQA 16/4 heads,
// intermediate 2816, vocabulary 32000, bf16, untied head; LoRA r=16 on q/k/v/o), filled with
// seeded bytes and hashed as python/lakebed_record.py's fingerprint() hashes real ones. Processes
// loaded "with the same weights" get the same seed; two fine-tunes of one base share the base's
// seed and differ in their adapters'.
//
// write-fixtures.mjs writes the fixtures of test/fixtures/scenarios/dedup/ with it.
import { chunkDigest, FINGERPRINT_FORMAT, FINGERPRINT_HASH } from "@lakebed/traces";

const CHUNK = 2 * 1024 * 1024;
const BF16 = 2;
const HIDDEN = 1024, LAYERS = 8, HEADS = 16, KV_HEADS = 4, INTERMEDIATE = 2816, VOCAB = 32000, RANK = 16;

/** [name, bytes] of every parameter of the base model, in module order. */
export function llamaParameters() {
  const kv = (HIDDEN / HEADS) * KV_HEADS;
  const out = [["model.embed_tokens.weight", VOCAB * HIDDEN * BF16]];
  for (let l = 0; l < LAYERS; l++) {
    const p = `model.layers.${l}`;
    out.push([`${p}.self_attn.q_proj.weight`, HIDDEN * HIDDEN * BF16], [`${p}.self_attn.k_proj.weight`, kv * HIDDEN * BF16],
      [`${p}.self_attn.v_proj.weight`, kv * HIDDEN * BF16], [`${p}.self_attn.o_proj.weight`, HIDDEN * HIDDEN * BF16],
      [`${p}.mlp.gate_proj.weight`, INTERMEDIATE * HIDDEN * BF16], [`${p}.mlp.up_proj.weight`, INTERMEDIATE * HIDDEN * BF16],
      [`${p}.mlp.down_proj.weight`, HIDDEN * INTERMEDIATE * BF16], [`${p}.input_layernorm.weight`, HIDDEN * BF16],
      [`${p}.post_attention_layernorm.weight`, HIDDEN * BF16]);
  }
  out.push(["model.norm.weight", HIDDEN * BF16], ["lm_head.weight", VOCAB * HIDDEN * BF16]);
  return out;
}

/** [name, bytes] of the LoRA adapters (A: r x in, B: out x r) on q/k/v/o, fp32 as peft makes them. */
export function loraParameters() {
  const FP32 = 4;
  const kv = (HIDDEN / HEADS) * KV_HEADS;
  const out = [];
  for (let l = 0; l < LAYERS; l++) {
    for (const [proj, outDim] of [["q_proj", HIDDEN], ["k_proj", kv], ["v_proj", kv], ["o_proj", HIDDEN]]) {
      const p = `base_model.model.model.layers.${l}.self_attn.${proj}`;
      out.push([`${p}.lora_A.default.weight`, RANK * HIDDEN * FP32], [`${p}.lora_B.default.weight`, outDim * RANK * FP32]);
    }
  }
  return out;
}

const digests = new Map();
/** The digest of chunk k of a storage whose bytes come from (seed, name): computed once. */
function digestOf(seed, name, offset, length) {
  const key = `${seed}/${name}/${offset}/${length}`;
  let d = digests.get(key);
  if (d === undefined) {
    const words = new Uint32Array(Math.ceil(length / 4));
    let x = (seed * 2654435761 + hash32(name) + offset) >>> 0 || 1;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      words[i] = x;
    }
    d = chunkDigest(new Uint8Array(words.buffer, 0, length));
    digests.set(key, d);
  }
  return d;
}

function hash32(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * The blocks a device trace never frees, in allocation order: where a recorded program's
 * parameters live (it allocates them first, in module order, when it loads the model).
 */
export function keptBlocks(device) {
  const e = device.events;
  const freed = new Set();
  for (let i = 0; i < e.length; i++) if (e.action[i] === 3) freed.add(e.blockId[i]); // Action.FreeCompleted
  const out = [];
  for (let i = 0; i < e.length; i++) if (e.action[i] === 1 && !freed.has(e.blockId[i])) out.push({ address: e.addr[i], bytes: e.size[i] }); // Action.Alloc
  return out;
}

/**
 * One process's fingerprints: the base model's parameters with bytes from baseSeed, plus LoRA
 * adapters from adapterSeed when given, each at the address of the block the trace kept for it
 * (the next kept block of its size, in order), so that they join to the trace as recorded ones do.
 */
export function syntheticFingerprints({ baseSeed, adapterSeed = null, device, label = "after load" }) {
  const params = [...llamaParameters().map(([n, b]) => [n, b, baseSeed]), ...(adapterSeed === null ? [] : loraParameters().map(([n, b]) => [n, b, adapterSeed]))];
  const kept = keptBlocks(device);
  let next = 0;
  const storages = params.map(([name, bytes, seed]) => {
    while (next < kept.length && kept[next].bytes !== bytes) next++;
    if (next === kept.length) throw new Error(`no block of ${bytes} bytes kept in the trace for ${name}`);
    const address = kept[next++].address;
    const chunks = [];
    for (let off = 0; off < bytes; off += CHUNK) chunks.push(digestOf(seed, name, off, Math.min(CHUNK, bytes - off)));
    return { address, bytes, names: [name], chunks };
  });
  return { format: FINGERPRINT_FORMAT, version: 1, hash: FINGERPRINT_HASH, chunk_bytes: CHUNK, device: 0, label, generated: "scripts/record-dedup/synthetic-fingerprints.mjs", storages };
}
