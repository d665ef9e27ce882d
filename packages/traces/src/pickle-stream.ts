/**
 * Reading a pickle as a stream: the input comes from a PickleSource in windows of a few MiB, each
 * decoded by the PickleDecoder where it lies (in the entry scanner's window region when the
 * WebAssembly fast path is on), and the bytes it decoded are dropped before the next window is read.
 * What stays is the decoder's state (stack, MARKs, memo: no value in it points into the input) and
 * the columns, so memory is bounded by them, not by the file or the decompressed size, and no
 * single buffer caps the size of a file.
 *
 * Invariant between windows: the window holds the pickle bytes [base, base + length); the decoder
 * resumes at window offset 0, which is the start of the opcode it suspended in (or the next one).
 * A window grows past its usual size only while one opcode needs more (a string of more bytes than
 * the window holds, a frame whose end must be checked in a gzip stream): then it holds that opcode
 * whole, as the decoder needs it, and the next one is of the usual size again.
 */
import { closeSync, fstatSync, openSync, readSync, createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import { PickleDecoder, SUSPENDED } from "./pickle-decoder.js";
import type { EntryScanner } from "./entry-scanner.js";
import { TraceError } from "./trace-error.js";
import { MAX_HELD_BYTES, limitExceeded, type ImportLimits } from "./import-limits.js";

/** The usual window: large enough that a window's fixed costs vanish, small beside any trace. */
export const DEFAULT_WINDOW_BYTES = 8 * 1024 * 1024;

/** Where the bytes of a pickle come from. */
export interface PickleSource {
  /** Reads into `target` from its start; the count, 0 only at the end of the input. */
  read(target: Uint8Array): number | Promise<number>;
  /** The pickle's length where it is known before it is read to the end (a plain file), else -1. */
  readonly total: number;
  /** How far into the file on disk the bytes read so far reach (progress is reported in those). */
  fileBytesRead(): number;
  /** The size of the file on disk (the last progress call is (size, size)). */
  readonly fileBytes: number;
  close(): void;
}

/** A pickle held in memory (parseTrace). */
export class MemorySource implements PickleSource {
  private at = 0;
  readonly total: number;
  constructor(
    /** the whole pickle (the JavaScript decoder reads it in one window where no window size is asked for) */
    readonly bytes: Uint8Array,
    readonly fileBytes = bytes.length,
  ) {
    this.total = bytes.length;
  }
  read(target: Uint8Array): number {
    const n = Math.min(target.length, this.bytes.length - this.at);
    target.set(this.bytes.subarray(this.at, this.at + n));
    this.at += n;
    return n;
  }
  fileBytesRead(): number {
    return Math.round((this.at / Math.max(1, this.bytes.length)) * this.fileBytes);
  }
  close(): void {}
}

/** One read call takes at most this many bytes (Node's fs.read takes a 32-bit length). */
export const READ_BYTES = 1024 ** 3;

/** A plain file, read with positioned reads from an open descriptor (readTrace and readTraceSync alike). */
export class FileSource implements PickleSource {
  private readonly fd: number;
  private at: number;
  readonly total: number;
  readonly fileBytes: number;
  /** `fd`: an open descriptor, which close() closes; reading starts at `start`. */
  constructor(fd: number, start = 0) {
    this.fd = fd;
    this.at = start;
    this.fileBytes = fstatSync(fd).size;
    this.total = this.fileBytes;
  }
  static open(path: string): FileSource {
    return new FileSource(openSync(path, "r"));
  }
  read(target: Uint8Array): number {
    const n = readSync(this.fd, target, 0, Math.min(target.length, READ_BYTES), this.at);
    this.at += n;
    return n;
  }
  fileBytesRead(): number {
    return Math.min(this.at, this.fileBytes);
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** Decompressed output comes in chunks of this size: each is one round trip to zlib's thread. */
const GUNZIP_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * A gzip file decompressed as it is read (createReadStream piped into createGunzip, pulled a chunk
 * at a time, so both streams pause while the decoder works). Decompression stops at the first chunk
 * past limits.decompressedBytes: a gzip bomb costs at most the limit in time, and a window in memory.
 */
export class GunzipSource implements PickleSource {
  readonly total = -1;
  readonly fileBytes: number;
  private readonly input: ReturnType<typeof createReadStream>;
  private readonly gunzip: ReturnType<typeof createGunzip>;
  private readonly chunks: AsyncIterator<Buffer>;
  private chunk: Buffer | null = null;
  private chunkAt = 0;
  private produced = 0;
  private ended = false;

  constructor(
    private readonly file: string,
    fd: number,
    private readonly limits: ImportLimits,
  ) {
    this.fileBytes = fstatSync(fd).size;
    this.input = createReadStream("", { fd, highWaterMark: 1024 * 1024 });
    this.gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
    this.input.on("error", (error) => this.gunzip.destroy(error));
    this.input.pipe(this.gunzip);
    this.chunks = (this.gunzip as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** The first decompressed byte, or -1 for an empty stream (readTrace picks the reader by it). */
  async firstByte(): Promise<number> {
    if (!(await this.nextChunk())) return -1;
    return this.chunk![0];
  }

  async read(target: Uint8Array): Promise<number> {
    let n = 0;
    while (n < target.length) {
      if (this.chunk === null || this.chunkAt === this.chunk.length) {
        // hand over what is here before waiting on zlib again
        if (n > 0 && this.chunk !== null) break;
        if (!(await this.nextChunk())) break;
      }
      const chunk = this.chunk!;
      const take = Math.min(target.length - n, chunk.length - this.chunkAt);
      target.set(chunk.subarray(this.chunkAt, this.chunkAt + take), n);
      this.chunkAt += take;
      n += take;
    }
    return n;
  }

  private async nextChunk(): Promise<boolean> {
    if (this.ended) return false;
    let next: IteratorResult<Buffer>;
    try {
      next = await this.chunks.next();
    } catch (error) {
      this.close();
      throw new TraceError(this.file, `not a valid gzip file: ${errorText(error)}`);
    }
    if (next.done === true) {
      this.ended = true;
      this.chunk = null;
      return false;
    }
    const chunk = next.value;
    if (this.produced + chunk.length > this.limits.decompressedBytes) {
      this.close();
      throw limitExceeded(this.file, "decompressedBytes", `${this.produced + chunk.length} or more`, this.limits);
    }
    this.produced += chunk.length;
    this.chunk = chunk;
    this.chunkAt = 0;
    return true;
  }

  fileBytesRead(): number {
    return Math.min(this.input.bytesRead, this.fileBytes);
  }

  close(): void {
    this.ended = true;
    this.gunzip.destroy();
    this.input.destroy();
  }
}

/**
 * The window bookkeeping of one streamed decode. A runner (decodeStreamSync / decodeStream) reads
 * into target() until it answers null, then calls decode(), until decode() answers true.
 */
class WindowedDecode {
  /** the bytes the window is in: the scanner's window region, or a Buffer of ours */
  private storage: Uint8Array;
  private length = 0;
  private base = 0;
  private ended = false;
  value: unknown = undefined;

  constructor(
    private readonly decoder: PickleDecoder,
    private readonly scanner: EntryScanner | null,
    private readonly source: PickleSource,
    private readonly windowBytes: number,
    private readonly onProgress: ((bytesDone: number, bytesTotal: number) => void) | undefined,
    private readonly file: string,
    wholeInMemory: boolean,
  ) {
    if (scanner !== null) {
      this.storage = scanner.prepareWindow(scanner.windowCapacity, decoder.memo.length);
    } else if (wholeInMemory && source instanceof MemorySource) {
      // already in memory, and nothing to copy it into: one window, the whole of it, as it lies
      this.storage = source.bytes;
      this.length = source.bytes.length;
      this.ended = true;
    } else {
      this.storage = Buffer.allocUnsafe(windowBytes);
    }
  }

  /** The pickle offset the decoder has reached (for the internal-error line and progress). */
  get reached(): number {
    return this.base;
  }

  /** Where the next read goes, or null when the window is full or the input ended. */
  target(): Uint8Array | null {
    if (this.ended || this.length === this.storage.length) return null;
    return this.storage.subarray(this.length);
  }

  filled(n: number): void {
    if (n === 0) this.ended = true;
    this.length += n;
  }

  /** Decodes the window; true when the pickle's value is in `value`, false when more input is needed. */
  decode(): boolean {
    const window = this.storage.subarray(0, this.length);
    this.scanner?.beginWindow(window);
    const base = this.base;
    const progress = this.onProgress === undefined ? undefined : () => this.onProgress!(this.source.fileBytesRead(), this.source.fileBytes);
    const result = this.decoder.decodeWindow(window, base, this.ended, this.source.total, 0, progress);
    if (result !== SUSPENDED) {
      this.value = result;
      return true;
    }
    this.slide(this.decoder.resumeAt, this.decoder.needEnd);
    return false;
  }

  /** Drops the window's bytes before `keepFrom` and makes room for the bytes up to pickle offset `needEnd`. */
  private slide(keepFrom: number, needEnd: number): void {
    this.scanner?.handOverStrings();
    const kept = this.length - keepFrom;
    const needed = Math.max(needEnd - (this.base + keepFrom), kept);
    if (needed > MAX_HELD_BYTES) {
      throw new TraceError(this.file, `the opcode at byte ${this.base + keepFrom} needs ${needed} bytes in one buffer, more than the ${MAX_HELD_BYTES} lakebed can hold; no snapshot value is that long`, { byteOffset: this.base + keepFrom });
    }
    const old = this.storage;
    const oldWasRegion = this.scanner !== null && !(old instanceof Buffer);
    if (needed <= this.windowBytes) {
      if (this.scanner !== null) {
        // reserving memo records may grow the scanner's memory: the region's view is taken after it
        const region = this.scanner.prepareWindow(this.windowBytes, this.decoder.memo.length);
        if (oldWasRegion) region.copyWithin(0, keepFrom, this.length);
        else region.set(old.subarray(keepFrom, this.length));
        this.storage = region;
      } else if (old.length === this.windowBytes) {
        old.copyWithin(0, keepFrom, this.length);
      } else {
        this.storage = Buffer.allocUnsafe(this.windowBytes);
        this.storage.set(old.subarray(keepFrom, this.length));
      }
    } else {
      // one opcode needs more than a window: a larger buffer, doubled each time the opcode is still
      // cut short (never sized by a length the file claims before its bytes are there)
      const grown = Buffer.allocUnsafe(Math.min(needed, Math.max(this.windowBytes, kept) * 2));
      grown.set(old.subarray(keepFrom, this.length));
      this.storage = grown;
    }
    this.base += keepFrom;
    this.length = kept;
  }
}

export interface StreamOptions {
  file: string;
  decoder: PickleDecoder;
  scanner: EntryScanner | null;
  windowBytes: number;
  /** a MemorySource without the scanner is decoded in one window, where it lies */
  wholeInMemory: boolean;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** told the pickle offset reached so far, for the internal-error line */
  onReached?: (pickleOffset: number) => void;
}

/** Decodes the pickle of a source whose reads answer at once. */
export function decodeStreamSync(source: PickleSource, opts: StreamOptions): unknown {
  const run = new WindowedDecode(opts.decoder, opts.scanner, source, opts.windowBytes, opts.onProgress, opts.file, opts.wholeInMemory);
  for (;;) {
    for (let target = run.target(); target !== null; target = run.target()) run.filled(source.read(target) as number);
    const done = run.decode();
    opts.onReached?.(run.reached);
    if (done) return run.value;
  }
}

/** Decodes the pickle of any source, waiting on its reads. */
export async function decodeStream(source: PickleSource, opts: StreamOptions): Promise<unknown> {
  const run = new WindowedDecode(opts.decoder, opts.scanner, source, opts.windowBytes, opts.onProgress, opts.file, opts.wholeInMemory);
  for (;;) {
    for (let target = run.target(); target !== null; target = run.target()) run.filled(await source.read(target));
    const done = run.decode();
    opts.onReached?.(run.reached);
    if (done) return run.value;
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
