// Content fingerprints of a program's read-only memory, as python/lakebed_record.py's
// fingerprint() writes them beside a snapshot (NAME.fingerprints.json): for each storage of the
// model's parameters and buffers, its device address, its size and one strong hash (BLAKE2b,
// 512 bits, hex) per 2 MiB window from its start. Identical digests mean identical bytes (up to a
// collision of a 512-bit hash), which is what a dedup policy needs to map one physical chunk for
// several processes.
//
//   {"format": "lakebed.fingerprints", "version": 1, "hash": "blake2b-512", "chunk_bytes": 2097152,
//    "torch": "2.11.0", "device": 0, "label": "after load",
//    "storages": [{"address": 139872, "bytes": 65536000, "names": ["model.embed_tokens.weight"],
//                  "chunks": ["9f2c...", ...]}, ...]}
//
// INV-FP-1  chunks.length = ceil(bytes / chunk_bytes); every digest is 128 hex digits.
// INV-FP-2  storages do not overlap (each is one allocator block or part of one).
import { readFileSync } from "node:fs";
import { TraceError } from "./trace-error.js";

export const FINGERPRINT_FORMAT = "lakebed.fingerprints";
export const FINGERPRINT_VERSION = 1;
export const FINGERPRINT_HASH = "blake2b-512";

export interface FingerprintedStorage {
  address: number;
  bytes: number;
  /** the parameters and buffers that view this storage */
  names: string[];
  /** one digest per chunk window from the storage's start; the last covers the remainder */
  chunks: string[];
}

export interface Fingerprints {
  chunkBytes: number;
  device: number;
  label: string;
  storages: FingerprintedStorage[];
}

const DIGEST = /^[0-9a-f]{128}$/;

export function readFingerprints(file: string): Fingerprints {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new TraceError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TraceError(file, `not JSON (${(e as Error).message})`);
  }
  return parseFingerprints(json, file);
}

/** Checks a fingerprint document; a bad one is one line naming the file and the JSON path. */
export function parseFingerprints(json: unknown, file: string): Fingerprints {
  const bad = (path: string, what: string) => new TraceError(file, `${path}: ${what}`);
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw bad("$", "expected an object");
  const doc = json as Record<string, unknown>;
  if (doc.format !== FINGERPRINT_FORMAT) throw bad("$.format", `expected "${FINGERPRINT_FORMAT}"`);
  if (doc.version !== FINGERPRINT_VERSION) throw bad("$.version", `expected ${FINGERPRINT_VERSION} (this lakebed reads version ${FINGERPRINT_VERSION})`);
  if (doc.hash !== FINGERPRINT_HASH) throw bad("$.hash", `expected "${FINGERPRINT_HASH}"`);
  const chunkBytes = doc.chunk_bytes;
  if (typeof chunkBytes !== "number" || !Number.isSafeInteger(chunkBytes) || chunkBytes <= 0 || chunkBytes % 512 !== 0) throw bad("$.chunk_bytes", "expected a positive multiple of 512");
  const device = doc.device ?? 0;
  if (typeof device !== "number" || !Number.isSafeInteger(device) || device < 0) throw bad("$.device", "expected a device index");
  if (!Array.isArray(doc.storages)) throw bad("$.storages", "expected an array");
  const storages = doc.storages.map((s: unknown, i: number): FingerprintedStorage => {
    const at = `$.storages[${i}]`;
    if (typeof s !== "object" || s === null) throw bad(at, "expected an object");
    const r = s as Record<string, unknown>;
    for (const key of ["address", "bytes"] as const) {
      const v = r[key];
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < (key === "bytes" ? 1 : 0)) throw bad(`${at}.${key}`, "expected a whole number of bytes");
    }
    const names = r.names ?? [];
    if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) throw bad(`${at}.names`, "expected an array of strings");
    if (!Array.isArray(r.chunks)) throw bad(`${at}.chunks`, "expected an array of digests");
    const want = Math.ceil((r.bytes as number) / chunkBytes);
    if (r.chunks.length !== want) throw bad(`${at}.chunks`, `expected ${want} digests for ${r.bytes} bytes, got ${r.chunks.length}`);
    r.chunks.forEach((d, k) => {
      if (typeof d !== "string" || !DIGEST.test(d)) throw bad(`${at}.chunks[${k}]`, "expected 128 lowercase hex digits (BLAKE2b-512)");
    });
    return { address: r.address as number, bytes: r.bytes as number, names: names as string[], chunks: r.chunks as string[] };
  });
  const sorted = [...storages].sort((a, b) => a.address - b.address);
  for (let k = 1; k < sorted.length; k++) {
    if (sorted[k].address < sorted[k - 1].address + sorted[k - 1].bytes) throw bad("$.storages", `storages at ${sorted[k - 1].address} and ${sorted[k].address} overlap`);
  }
  return { chunkBytes, device, label: typeof doc.label === "string" ? doc.label : "", storages };
}
