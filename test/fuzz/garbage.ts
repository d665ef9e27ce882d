import { ALLOWED_PICKLE_OPCODES, concat, PICKLE_OPCODE_BYTES } from "./mutate-bytes.js";
import { toJsonText } from "./mutate-values.js";
import type { Rng } from "../support/random.js";

/**
 * Inputs made from nothing: random bytes behind each format's magic, random streams of pickle
 * opcodes with plausible arguments (stack underflow, memo indices out of range, lengths past the
 * end, nesting), random JSON documents, and dictionaries shaped like snapshots with random contents.
 */
const MAGICS = [
  Uint8Array.of(),
  Uint8Array.of(0x80, 0x02),
  Uint8Array.of(0x80, 0x04, 0x95),
  Uint8Array.of(0x80, 0x05),
  Uint8Array.of(0x1f, 0x8b, 0x08, 0x00),
  new TextEncoder().encode("ARROW1\0\0"),
  new TextEncoder().encode("{"),
  new TextEncoder().encode("["),
];

export function randomBytes(rng: Rng): Uint8Array {
  return concat(rng.pick(MAGICS), rng.bytes(rng.skewed(8192)));
}

/** a random sequence of pickle opcodes, each with an argument of the right width (mostly) */
export function randomPickle(rng: Rng): Uint8Array {
  const parts: number[] = [0x80, rng.range(0, 6)];
  const ops = rng.range(1, rng.chance(0.1) ? 20_000 : 200);
  const arg = (width: number) => {
    for (let i = 0; i < width; i++) parts.push(rng.chance(0.7) ? rng.below(4) : rng.below(256));
  };
  for (let i = 0; i < ops; i++) {
    const op = rng.chance(0.9) ? rng.pick(ALLOWED_PICKLE_OPCODES) : rng.pick(PICKLE_OPCODE_BYTES);
    parts.push(op);
    switch (op) {
      case 0x80: case 0x4b: case 0x71: case 0x68: case 0x8a:
        arg(1);
        if (op === 0x8a) arg(parts[parts.length - 1] & 0x0f);
        break;
      case 0x4d:
        arg(2);
        break;
      case 0x4a: case 0x72: case 0x6a:
        arg(4);
        break;
      case 0x47: case 0x95:
        arg(8);
        break;
      case 0x8c: case 0x43: {
        const n = rng.below(12);
        parts.push(n);
        for (let k = 0; k < n; k++) parts.push(rng.range(0x61, 0x7a));
        break;
      }
      case 0x58: case 0x42: case 0x8b:
        arg(4);
        break;
      case 0x8d: case 0x8e:
        arg(8);
        break;
    }
  }
  if (rng.chance(0.8)) parts.push(0x2e);
  return Uint8Array.from(parts);
}

function randomJsonValue(rng: Rng, depth: number): unknown {
  if (depth > 6 || rng.chance(0.35)) {
    return rng.pick<unknown>([null, true, false, rng.range(-1000, 1 << 30), rng.range(0, 2 ** 48), 0.25, -1, "alloc", "segment_alloc", "x", ""]);
  }
  if (rng.chance(0.5)) return Array.from({ length: rng.skewed(20) }, () => randomJsonValue(rng, depth + 1));
  const keys = ["segments", "device_traces", "allocator_settings", "action", "addr", "size", "stream", "blocks", "address", "total_size", "state", "k"];
  const o: Record<string, unknown> = {};
  for (let i = rng.skewed(8); i >= 0; i--) o[rng.pick(keys)] = randomJsonValue(rng, depth + 1);
  return o;
}

export function randomJson(rng: Rng): Uint8Array {
  let text: string;
  switch (rng.below(4)) {
    case 0:
      text = "[".repeat(rng.skewed(200_000)) + "]".repeat(rng.skewed(10));
      break;
    case 1:
      text = `{"segments": [], "device_traces": [[${Array.from({ length: rng.skewed(50) }, () => toJsonText(randomJsonValue(rng, 3))).join(",")}]]}`;
      break;
    default:
      text = toJsonText(randomJsonValue(rng, 0));
  }
  return new TextEncoder().encode(text);
}

/** a dictionary shaped like a snapshot whose entries are random, for pickle or JSON writing */
export function randomSnapshotDict(rng: Rng): Record<string, unknown> {
  const entry = () => ({
    action: rng.pick(["alloc", "free_requested", "free_completed", "segment_alloc", "segment_free", "segment_map", "segment_unmap", "oom", "snapshot"]),
    addr: rng.range(0, 8) * 512 + 2 ** 30,
    size: rng.pick([rng.range(1, 4096), 2 ** 21, 2 ** 21 * rng.range(1, 20), -1]),
    stream: rng.pick([0, 0, 0, 7]),
    time_us: rng.range(0, 1000),
    frames: [],
  });
  const block = (addr: number) => ({ address: addr, size: rng.pick([512, 1024, 2 ** 20, 2 ** 21]), requested_size: rng.range(0, 2 ** 21), state: rng.pick(["active_allocated", "inactive", "active_pending_free"]), frames: [] });
  const segment = () => {
    const address = 2 ** 30 + rng.range(0, 4) * 2 ** 21;
    const blocks = Array.from({ length: rng.range(1, 4) }, (_, i) => block(address + i * 512));
    return { device: rng.pick([0, 0, 1]), address, total_size: rng.pick([2 ** 21, 2 ** 22, 512]), allocated_size: 0, active_size: 0, requested_size: 0, stream: 0, segment_type: rng.pick(["small", "large"]), segment_pool_id: [0, 0], is_expandable: rng.chance(0.3), frames: [], blocks };
  };
  return {
    segments: Array.from({ length: rng.skewed(6) }, segment),
    device_traces: Array.from({ length: rng.range(0, 2) }, () => Array.from({ length: rng.skewed(60) }, entry)),
    allocator_settings: { PYTORCH_CUDA_ALLOC_CONF: rng.pick(["", "expandable_segments:True", "max_split_size_mb:20", "bogus"]), max_split_size: -1, garbage_collection_threshold: 0, expandable_segments: rng.chance(0.5) },
  };
}
