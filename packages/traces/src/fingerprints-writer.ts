// Writes fingerprint documents (fingerprints.ts) from bytes in memory: the same JSON that
// python/lakebed_record.py's fingerprint() writes from a model on a GPU (BLAKE2b-512 of each 2 MiB
// window, hex), so that tests and generated fixtures need no PyTorch.
import { createHash } from "node:crypto";
import { FINGERPRINT_FORMAT, FINGERPRINT_HASH, FINGERPRINT_VERSION } from "./fingerprints.js";

export interface StorageToFingerprint {
  address: number;
  bytes: number;
  names: string[];
  /** the storage's bytes [offset, offset + length) */
  read(offset: number, length: number): Uint8Array;
}

/** hashlib.blake2b(data).hexdigest() (digest_size 64, Python's default). */
export function chunkDigest(data: Uint8Array): string {
  return createHash("blake2b512").update(data).digest("hex");
}

export function fingerprintDocument(storages: StorageToFingerprint[], options: { chunkBytes?: number; device?: number; label?: string } = {}): object {
  const chunkBytes = options.chunkBytes ?? 2 * 1024 * 1024;
  return {
    format: FINGERPRINT_FORMAT,
    version: FINGERPRINT_VERSION,
    hash: FINGERPRINT_HASH,
    chunk_bytes: chunkBytes,
    device: options.device ?? 0,
    label: options.label ?? "",
    storages: storages.map((s) => {
      const chunks: string[] = [];
      for (let off = 0; off < s.bytes; off += chunkBytes) chunks.push(chunkDigest(s.read(off, Math.min(chunkBytes, s.bytes - off))));
      return { address: s.address, bytes: s.bytes, names: s.names, chunks };
    }),
  };
}
