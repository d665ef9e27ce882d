/**
 * Decoding of the pickle scalars that dominate a snapshot: strings and integers. Plain functions
 * over a byte array and an offset, so the decoder's hot loop keeps its position in a local.
 * Bounds are the caller's job (it checks before calling).
 */
import { constants as bufferConstants } from "node:buffer";

/** Short ASCII strings are interned through a small cache: a snapshot repeats "N/A" once per event. */
const CACHE_MAX_LENGTH = 32;
const CACHE_SLOTS = 4096;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The longest string V8 can create, in UTF-16 code units (2^29 - 24 on 64-bit builds). A pickle
 * string or a JSON text beyond it cannot be held at all: that is a stated limit of the importer,
 * not a sign of bad input.
 */
export const MAX_JS_STRING_LENGTH = bufferConstants.MAX_STRING_LENGTH;

/** What StringDecoder.decodeAny answers for bytes that would decode to a string too long for JavaScript. */
export const TOO_LONG = Symbol("string too long");

/**
 * Decodes UTF-8 strings, returning the same JS string for repeated short ASCII ones. Cached strings
 * are internalized (V8 then compares them with literals such as "action" by pointer), which makes
 * the column builder's key dispatch cheap.
 */
export class StringDecoder {
  private readonly cache: (string | undefined)[] = new Array(CACHE_SLOTS).fill(undefined);

  /** The string of n bytes at start, or undefined when they are not valid UTF-8. */
  decode(buf: Uint8Array, start: number, n: number): string | undefined {
    if (n <= CACHE_MAX_LENGTH) {
      let hash = n;
      let ascii = true;
      for (let i = start; i < start + n; i++) {
        const b = buf[i];
        if (b >= 0x80) {
          ascii = false;
          break;
        }
        hash = (Math.imul(hash, 31) + b) | 0;
      }
      if (ascii) {
        const slot = hash & (CACHE_SLOTS - 1);
        const cached = this.cache[slot];
        if (cached !== undefined && cached.length === n && sameAscii(cached, buf, start)) return cached;
        const s = internalize(String.fromCharCode.apply(null, buf.subarray(start, start + n) as unknown as number[]));
        this.cache[slot] = s;
        return s;
      }
    }
    try {
      return utf8.decode(buf.subarray(start, start + n));
    } catch {
      return undefined;
    }
  }

  /**
   * decode for strings of any length: also TOO_LONG where the string would be longer than
   * MAX_JS_STRING_LENGTH (only possible when n exceeds it), whether or not the bytes are valid UTF-8.
   */
  decodeAny(buf: Uint8Array, start: number, n: number): string | undefined | typeof TOO_LONG {
    if (n > MAX_JS_STRING_LENGTH && utf16Length(buf, start, n) > MAX_JS_STRING_LENGTH) return TOO_LONG;
    return this.decode(buf, start, n);
  }
}

/**
 * The length in UTF-16 code units of the string the n bytes at start decode to where they are valid
 * UTF-8: one unit per byte that starts a character (not 10xxxxxx), one more for a four-byte one.
 * Counting is much cheaper than decoding, so a string too long to hold is refused before any work.
 */
export function utf16Length(buf: Uint8Array, start: number, n: number): number {
  let units = 0;
  for (let i = start; i < start + n; i++) {
    const b = buf[i];
    if ((b & 0xc0) !== 0x80) units += b >= 0xf0 ? 2 : 1;
  }
  return units;
}

function sameAscii(s: string, buf: Uint8Array, start: number): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== buf[start + i]) return false;
  return true;
}

/** V8 internalizes property keys; Object.keys hands back the internalized string. */
function internalize(s: string): string {
  const holder: Record<string, 0> = Object.create(null);
  holder[s] = 0;
  return Object.keys(holder)[0] ?? s;
}

/**
 * The little-endian two's complement integer of n bytes at start (LONG1 / LONG4): a number when it
 * is exact as one (|value| <= 2^53 - 1), else a bigint.
 */
export function readLittleEndianInt(buf: Uint8Array, start: number, n: number): number | bigint {
  if (n === 0) return 0;
  const negative = buf[start + n - 1] >= 0x80;
  if (!negative && n <= 8) {
    let value = 0;
    let scale = 1;
    for (let i = start; i < start + n; i++) {
      value += buf[i] * scale;
      scale *= 256;
    }
    // every partial sum is an integer no larger than the total, so a total within the safe range is exact
    if (value <= Number.MAX_SAFE_INTEGER) return value;
  }
  let big = 0n;
  for (let i = start + n - 1; i >= start; i--) big = (big << 8n) | BigInt(buf[i]);
  if (negative) big -= 1n << BigInt(8 * n);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/**
 * The common case of readLittleEndianInt without a loop: a non-negative integer of at most 7 bytes
 * (addresses take 5-6, microsecond times 7) that is exact as a number; NaN for anything else.
 */
export function readSmallUnsigned(buf: Uint8Array, start: number, n: number): number {
  if (n === 0 || n > 7 || buf[start + n - 1] >= 0x80) return NaN;
  if (n <= 3) return n === 1 ? buf[start] : n === 2 ? buf[start] | (buf[start + 1] << 8) : buf[start] | (buf[start + 1] << 8) | (buf[start + 2] << 16);
  const low = (buf[start] | (buf[start + 1] << 8) | (buf[start + 2] << 16)) + buf[start + 3] * 16777216;
  if (n === 4) return low;
  const high = n === 5 ? buf[start + 4] : n === 6 ? buf[start + 4] | (buf[start + 5] << 8) : buf[start + 4] | (buf[start + 5] << 8) | (buf[start + 6] << 16);
  const value = high * 4294967296 + low;
  return value <= Number.MAX_SAFE_INTEGER ? value : NaN;
}
