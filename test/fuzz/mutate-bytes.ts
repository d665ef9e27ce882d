import type { Rng } from "../support/random.js";

/**
 * Byte-level mutations in the manner of AFL's havoc stage: flips, interesting values, integer
 * overwrites in both byte orders, deletions, insertions, duplications, truncation and splicing with
 * another input. Applied 1 to 8 at a time. Sizes stay bounded (at most 2x the input plus 64 KiB).
 */
const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x2e /* STOP */, 0x28 /* MARK */, 0x7b /* { */, 0x22 /* " */];
const INTERESTING_32 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

/** the data-only opcodes a snapshot decoder executes */
export const ALLOWED_PICKLE_OPCODES = [
  0x80, 0x95, 0x2e, 0x28, 0x7d, 0x5d, 0x29, 0x8f, 0x73, 0x75, 0x61, 0x65, 0x90, 0x74, 0x85, 0x86, 0x87, 0x91, 0x64, 0x6c,
  0x30, 0x31, 0x32, 0x8c, 0x58, 0x8d, 0x43, 0x42, 0x8e, 0x4a, 0x4b, 0x4d, 0x8a, 0x8b, 0x47, 0x88, 0x89, 0x4e, 0x94, 0x71,
  0x72, 0x68, 0x6a,
];
/** opcodes it must refuse: GLOBAL, STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, PERSID, BINPERSID, EXT1, INT, LONG, STRING, FLOAT */
export const REFUSED_PICKLE_OPCODES = [
  0x63, 0x93, 0x52, 0x62, 0x69, 0x6f, 0x81, 0x50, 0x51, 0x82, 0x49, 0x4c, 0x53, 0x46,
];
export const PICKLE_OPCODE_BYTES = [...ALLOWED_PICKLE_OPCODES, ...REFUSED_PICKLE_OPCODES];

export function mutateBytes(input: Uint8Array, rng: Rng, others: readonly Uint8Array[] = []): Uint8Array {
  let b = input;
  const rounds = rng.range(1, 8);
  for (let r = 0; r < rounds; r++) b = mutateOnce(b, rng, others);
  return b;
}

function mutateOnce(input: Uint8Array, rng: Rng, others: readonly Uint8Array[]): Uint8Array {
  const n = input.length;
  const at = () => rng.below(Math.max(1, n));
  const span = () => Math.min(n, rng.skewed(Math.max(1, n >> 2)) + 1);
  switch (rng.below(11)) {
    case 0: {
      if (n === 0) return rng.bytes(rng.range(1, 16));
      const b = input.slice();
      const i = at();
      b[i] ^= 1 << rng.below(8);
      return b;
    }
    case 1: {
      if (n === 0) return Uint8Array.of(rng.pick(INTERESTING_8));
      const b = input.slice();
      b[at()] = rng.pick(INTERESTING_8);
      return b;
    }
    case 2: {
      if (n < 4) return input;
      const b = input.slice();
      const width = rng.pick([2, 4, 8]);
      const i = rng.below(n - Math.min(n, width) + 1);
      const v = rng.pick(INTERESTING_32);
      const big = rng.chance(0.5);
      for (let k = 0; k < width && i + k < n; k++) {
        const shift = big ? 8 * (width - 1 - k) : 8 * k;
        b[i + k] = shift >= 32 ? (rng.chance(0.5) ? 0 : 0xff) : (v >>> shift) & 0xff;
      }
      return b;
    }
    case 3: {
      // delete a range
      const i = at();
      const len = span();
      return concat(input.subarray(0, i), input.subarray(Math.min(n, i + len)));
    }
    case 4: {
      // insert random bytes
      const i = at();
      return concat(input.subarray(0, i), rng.bytes(rng.skewed(64) + 1), input.subarray(i));
    }
    case 5: {
      // duplicate a range (bounded)
      const i = at();
      const len = Math.min(span(), 64 * 1024);
      const j = at();
      return concat(input.subarray(0, j), input.subarray(i, i + len), input.subarray(j));
    }
    case 6:
      // truncate
      return input.slice(0, at());
    case 7: {
      // splice: the head of this input and the tail of another
      if (others.length === 0) return input;
      const o = rng.pick(others);
      return concat(input.subarray(0, at()), o.subarray(rng.below(Math.max(1, o.length))));
    }
    case 8: {
      // a pickle opcode, known or refused, somewhere
      if (n === 0) return Uint8Array.of(rng.pick(PICKLE_OPCODE_BYTES));
      const b = input.slice();
      b[at()] = rng.pick(PICKLE_OPCODE_BYTES);
      return b;
    }
    case 9: {
      // overwrite a range with a copy of another range of the same input
      if (n < 2) return input;
      const b = input.slice();
      const len = span();
      const from = rng.below(n - len + 1);
      const to = rng.below(n - len + 1);
      b.copyWithin(to, from, from + len);
      return b;
    }
    default: {
      // set a run of bytes to one value
      if (n === 0) return input;
      const b = input.slice();
      const i = at();
      b.fill(rng.pick(INTERESTING_8), i, Math.min(n, i + span()));
      return b;
    }
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
