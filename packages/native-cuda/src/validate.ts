// Argument checks made before the addon is called, so that a wrong argument fails with a clear
// DeviceError naming the call and the argument. The addon checks again, cheaply, and checks what
// only it can see (which handles, reservations and mappings are live).
import { invalid } from "./errors.js";

export class ArgChecker {
  constructor(
    private readonly driver: string,
    private readonly granularityBytes: number,
  ) {}

  /** An integer in [0, 2^53). */
  integer(call: string, name: string, value: unknown): number {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      throw invalid(this.driver, call, `${name} must be a non-negative integer below 2^53, got ${String(value)}`);
    }
    return value;
  }

  positive(call: string, name: string, value: unknown): number {
    const n = this.integer(call, name, value);
    if (n === 0) throw invalid(this.driver, call, `${name} must be positive`);
    return n;
  }

  /** A positive multiple of the allocation granularity (2 MiB on H100 and host). */
  granular(call: string, name: string, value: unknown): number {
    const n = this.integer(call, name, value);
    if (n === 0 || n % this.granularityBytes !== 0) {
      throw invalid(this.driver, call, `${name} must be a positive multiple of ${this.granularityBytes} bytes, got ${n}`);
    }
    return n;
  }

  /** An address aligned to the granularity (0 is never an address a driver returns). */
  alignedVa(call: string, value: unknown): number {
    const n = this.integer(call, "va", value);
    if (n === 0 || n % this.granularityBytes !== 0) {
      throw invalid(this.driver, call, `va must be a non-zero multiple of ${this.granularityBytes} bytes, got ${n}`);
    }
    return n;
  }

  va(call: string, value: unknown): number {
    const n = this.integer(call, "va", value);
    if (n === 0) throw invalid(this.driver, call, "va must not be 0");
    return n;
  }

  alignment(call: string, value: unknown): number {
    const n = this.integer(call, "alignment", value);
    if (n !== 0 && !isPowerOfTwo(n)) {
      throw invalid(this.driver, call, `alignment must be 0 or a power of two, got ${n}`);
    }
    return n;
  }

  /** Any ArrayBufferView, seen as bytes (no copy); `bytes` defaults to its whole length. */
  buffer(call: string, view: unknown, bytes: unknown): { bytes: number; view: Uint8Array } {
    if (!ArrayBuffer.isView(view)) {
      throw invalid(this.driver, call, "buffer must be a Buffer, TypedArray or DataView");
    }
    const u8 = view instanceof Uint8Array ? view : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const n = bytes === undefined ? u8.byteLength : this.positive(call, "bytes", bytes);
    if (n === 0) throw invalid(this.driver, call, "buffer is empty");
    if (n > u8.byteLength) {
      throw invalid(this.driver, call, `buffer holds ${u8.byteLength} bytes, fewer than ${n}`);
    }
    return { bytes: n, view: u8 };
  }
}

// Bitwise operators work on 32 bits; alignments can be larger. (The addon checks exactly.)
function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}
