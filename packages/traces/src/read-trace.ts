/**
 * The entry point: reads a trace file in any supported format into the Trace model.
 *
 * The format is detected from the content, never from the file name:
 *   1f 8b            gzip: decompressed with node:zlib, then detected again (once)
 *   80 (PROTO)       a snapshot pickle: read as a stream (readTrace, and readTraceSync when plain),
 *                    a window at a time (pickle-stream.ts), so no file is too large to read
 *   "ARROW1"         lakebed's Arrow IPC trace file (arrow-format.ts)
 *   '{' or '['       a snapshot saved with json.dump (leading whitespace and a UTF-8 BOM allowed)
 *   anything else    a pickle; the data-only decoder refuses whatever is not plain data
 * All but the streamed pickle are read whole into one buffer (at most MAX_HELD_BYTES), as their
 * readers need.
 *
 * Every reader keeps to the stated limits (import-limits.ts): a gzip stream is decompressed up to
 * limits.decompressedBytes and no further, the pickle decoder refuses nesting past limits.depth, and
 * what was decoded is checked against the rest (snapshot-bounds.ts) before anything is built on it.
 *
 * Progress is reported in bytes of the file on disk (for a streamed pickle, how far into the file
 * the windows read so far reach), and the last call is (size, size).
 */
import { closeSync, fstatSync, openSync, read, readSync } from "node:fs";
import { promisify } from "node:util";
import { createGunzip, gunzipSync } from "node:zlib";
import type { Trace } from "./model.js";
import { TraceError } from "./trace-error.js";
import { decodeSnapshotPickle, decodeSnapshotPickleSync, type PickleDecoderChoice, type PickleReadOptions } from "./pickle-input.js";
import { decodeSnapshotJson } from "./json-input.js";
import { assembleTrace, type DecodedSnapshot } from "./assemble-trace.js";
import { isArrowTrace, readTraceArrowBytes } from "./arrow-format.js";
import { MAX_JS_STRING_LENGTH, utf16Length } from "./pickle-scalars.js";
import { MAX_HELD_BYTES, importLimits, limitExceeded, type ImportLimits } from "./import-limits.js";
import { checkSnapshotBounds } from "./snapshot-bounds.js";
import { ImportInternalError } from "./import-internal-error.js";
import { FileSource, GunzipSource, MemorySource, READ_BYTES, type PickleSource } from "./pickle-stream.js";

export interface ReadTraceOptions {
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** Pickles only: "js" turns the WebAssembly entry scanner off (same result; tests compare the two). */
  decoder?: PickleDecoderChoice;
  /** The stated limits (import-limits.ts) to change; the others keep their defaults. */
  limits?: Partial<ImportLimits>;
  /**
   * Pickles only: the bytes read and decoded at a time (pickle-stream.ts; 8 MiB by default). Any
   * size gives the same result; tests make it small to cut the input at every opcode.
   */
  windowBytes?: number;
}

const PICKLE_PROTO = 0x80;
const MIN_CHUNK_BYTES = 64 * 1024;
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
const DEFLATE_MAX_RATIO = 1032;
const readAsync = promisify(read);

/**
 * A pickle that begins with PROTO (every snapshot PyTorch writes), plain or gzip, is read as a
 * stream (pickle-stream.ts): a window at a time, so memory is bounded by the columns and no file
 * size is too large. Anything else (JSON, Arrow, a pickle without PROTO, not a trace at all) is
 * read whole, as its reader needs (at most MAX_HELD_BYTES).
 */
export async function readTrace(path: string, opts: ReadTraceOptions = {}): Promise<Trace> {
  const limits = importLimits(opts.limits);
  const head = openHead(path);
  if (head.gzip) {
    const source = new GunzipSource(path, head.fd, limits);
    let first: number;
    try {
      first = await source.firstByte();
    } catch (error) {
      source.close();
      throw error;
    }
    if (first === PICKLE_PROTO) return streamedTrace(source, path, true, opts, limits);
    source.close();
  } else if (head.first === PICKLE_PROTO) {
    return streamedTrace(new FileSource(head.fd), path, false, opts, limits);
  }
  // read whole: a plain file through the descriptor openHead checked; a gzip one again from the
  // start (its stream took the descriptor and closed it)
  const bytes = await readWhole(head.gzip ? openHead(path) : head, path);
  const payload = isGzip(bytes) ? await gunzipBounded(path, bytes, limits) : bytes;
  return decodeTrace(payload, path, isGzip(bytes), bytes.length, opts, limits);
}

export function readTraceSync(path: string, opts: ReadTraceOptions = {}): Trace {
  const limits = importLimits(opts.limits);
  const head = openHead(path);
  if (!head.gzip && head.first === PICKLE_PROTO) {
    const trace = streamedTrace(new FileSource(head.fd), path, false, opts, limits);
    return trace as Trace;
  }
  return parseTrace(readWholeSync(head, path), path, opts);
}

/** Decodes a trace held in memory; `file` names it in errors. */
export function parseTrace(bytes: Uint8Array, file: string, opts: ReadTraceOptions = {}): Trace {
  const limits = importLimits(opts.limits);
  const payload = isGzip(bytes) ? gunzipBoundedSync(file, bytes, limits) : bytes;
  return decodeTrace(payload, file, isGzip(bytes), bytes.length, opts, limits);
}

/** An open regular file: its size, whether it is gzip, and its first byte (-1 when empty). */
interface FileHead {
  fd: number;
  size: number;
  gzip: boolean;
  first: number;
}

function openHead(path: string): FileHead {
  let fd = -1;
  try {
    fd = openSync(path, "r");
    const info = fstatSync(fd);
    if (!info.isFile()) throw new TraceError(path, "not a regular file");
    const head = new Uint8Array(2);
    const n = readSync(fd, head, 0, 2, 0);
    return { fd, size: info.size, gzip: n === 2 && head[0] === 0x1f && head[1] === 0x8b, first: n > 0 ? head[0] : -1 };
  } catch (error) {
    if (fd >= 0) closeSync(fd);
    if (error instanceof TraceError) throw error;
    throw new TraceError(path, `cannot read the file: ${errorText(error)}`);
  }
}

/**
 * A pickle read as a stream from `source`, then checked and assembled; synchronous where the source
 * is (a plain file). Errors are as decodeTrace's.
 */
function streamedTrace(source: PickleSource, file: string, gzip: boolean, opts: ReadTraceOptions, limits: ImportLimits): Trace | Promise<Trace> {
  let stage = "decoding the pickle";
  let reached = 0;
  const fail = (error: unknown): never => {
    if (error instanceof TraceError) throw error;
    const where = stage === "decoding the pickle" ? `${stage} (past byte ${reached}${source.total >= 0 ? ` of ${source.total}` : ""})` : stage;
    throw new ImportInternalError(file, where, error);
  };
  const build = (decoded: DecodedSnapshot): Trace => {
    stage = "checking the stated limits";
    checkSnapshotBounds(decoded, limits);
    stage = "assembling the trace";
    const trace = assembleTrace(decoded);
    opts.onProgress?.(source.fileBytes, source.fileBytes);
    return trace;
  };
  const read: PickleReadOptions = {
    decoder: opts.decoder ?? "wasm",
    limits,
    onProgress: opts.onProgress,
    windowBytes: opts.windowBytes,
    onReached: (at) => (reached = at),
  };
  if (source instanceof GunzipSource) {
    return decodeSnapshotPickle(source, { file, gzip }, read).then(
      (decoded) => {
        try {
          return build(decoded);
        } catch (error) {
          return fail(error);
        }
      },
      fail,
    );
  }
  try {
    return build(decodeSnapshotPickleSync(source, { file, gzip }, read));
  } catch (error) {
    return fail(error);
  }
}

/**
 * Any other error a reader throws (a TypeError on input no check foresaw) becomes one line naming
 * the file and how far reading got (import-internal-error.ts), never a JavaScript message and stack.
 */
function decodeTrace(payload: Uint8Array, file: string, gzip: boolean, fileBytes: number, opts: ReadTraceOptions, limits: ImportLimits): Trace {
  const { onProgress } = opts;
  if (payload.length === 0) throw new TraceError(file, gzip ? "the gzip stream is empty" : "the file is empty");
  let stage = "reading the Arrow file";
  // how far the pickle decoder got (window by window)
  let pickleBytes = 0;
  try {
    let trace: Trace;
    if (isArrowTrace(payload)) {
      trace = readTraceArrowBytes(payload, { file, gzip }, limits);
    } else {
      const json = looksLikeJson(payload);
      stage = json ? "reading the JSON" : "decoding the pickle";
      const read: PickleReadOptions = { decoder: opts.decoder ?? "wasm", limits, onProgress, windowBytes: opts.windowBytes, onReached: (at) => (pickleBytes = at) };
      const decoded = json ? decodeSnapshotJson(parseJson(payload, file), { file, gzip }, limits) : decodePickleOrExplain(new MemorySource(payload, fileBytes), payload, file, gzip, read);
      stage = "checking the stated limits";
      checkSnapshotBounds(decoded, limits);
      stage = "assembling the trace";
      trace = assembleTrace(decoded);
    }
    onProgress?.(fileBytes, fileBytes);
    return trace;
  } catch (error) {
    if (error instanceof TraceError) throw error;
    const where = stage === "decoding the pickle" ? `${stage} (past byte ${pickleBytes} of ${payload.length})` : stage;
    throw new ImportInternalError(file, where, error);
  }
}

/** A file that fails on its very first byte is most likely not a pickle at all: say what was expected. */
function decodePickleOrExplain(source: MemorySource, payload: Uint8Array, file: string, gzip: boolean, read: PickleReadOptions): DecodedSnapshot {
  try {
    return decodeSnapshotPickleSync(source, { file, gzip }, read);
  } catch (error) {
    if (error instanceof TraceError && error.where.byteOffset === 0 && payload[0] !== PICKLE_PROTO) {
      throw new TraceError(file, `not a trace file lakebed reads (a PyTorch snapshot pickle, its JSON, or lakebed's Arrow format): ${error.detail}`, error.where);
    }
    throw error;
  }
}

/** The buffer a file of `size` bytes is read whole into (JSON, Arrow: what is not a streamed pickle). */
function inputBuffer(path: string, size: number): Uint8Array {
  if (size > MAX_HELD_BYTES) {
    throw new TraceError(path, `the file has ${size} bytes, more than the ${MAX_HELD_BYTES} bytes lakebed can hold in memory in one buffer, which a JSON or Arrow trace needs (a snapshot pickle is read as a stream, at any size)`);
  }
  return Buffer.allocUnsafe(size);
}

/** The whole file behind `head` (sized by its stat), its descriptor closed after; fewer bytes if it shrank since. */
async function readWhole(head: FileHead, path: string): Promise<Uint8Array> {
  try {
    const view = inputBuffer(path, head.size);
    let done = 0;
    while (done < view.length) {
      const { bytesRead } = await readAsync(head.fd, view, done, Math.min(view.length - done, READ_BYTES), done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === view.length ? view : view.subarray(0, done);
  } catch (error) {
    if (error instanceof TraceError) throw error;
    throw new TraceError(path, `cannot read the file: ${errorText(error)}`);
  } finally {
    closeSync(head.fd);
  }
}

function readWholeSync(head: FileHead, path: string): Uint8Array {
  try {
    const view = inputBuffer(path, head.size);
    let done = 0;
    while (done < view.length) {
      const bytesRead = readSync(head.fd, view, done, Math.min(view.length - done, READ_BYTES), done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === view.length ? view : view.subarray(0, done);
  } catch (error) {
    if (error instanceof TraceError) throw error;
    throw new TraceError(path, `cannot read the file: ${errorText(error)}`);
  } finally {
    closeSync(head.fd);
  }
}

/**
 * The gzip trailer's ISIZE: the decompressed size mod 2^32, exact for every stream lakebed can hold
 * (a lying one fails zlib's own length check). A multi-member file has its last member's size there.
 */
function trailerSize(bytes: Uint8Array): number {
  const n = bytes.length;
  return n >= 4 ? (bytes[n - 4] | (bytes[n - 3] << 8) | (bytes[n - 2] << 16)) + bytes[n - 1] * 16777216 : 0;
}

/**
 * For a trace read whole: decompresses `bytes` as a stream, refusing at the first chunk past
 * limits.decompressedBytes, so a gzip bomb costs at most the limit in time and memory. The output
 * goes straight into its final buffer (sized by ISIZE) where ISIZE is plausible: deflate expands at
 * most 1032:1. A stream larger than its ISIZE (several members) is collected in chunks instead.
 * Output chunks are large (up to 64 MiB): each one is a round trip to the thread pool, and with
 * zlib's 16 KiB default the gunzip of a 24 MB trace took twice as long as its whole decode.
 */
async function gunzipBounded(file: string, bytes: Uint8Array, limits: ImportLimits): Promise<Uint8Array> {
  const isize = trailerSize(bytes);
  const heldLimit = Math.min(limits.decompressedBytes, MAX_HELD_BYTES);
  const plausible = isize > 0 && isize <= heldLimit && isize <= bytes.length * DEFLATE_MAX_RATIO;
  let dest: Uint8Array | null = plausible ? inputBuffer(file, isize) : null;
  const chunks: Uint8Array[] = [];
  let total = 0;
  const gunzip = createGunzip({ chunkSize: Math.max(MIN_CHUNK_BYTES, Math.min(plausible ? isize + 1 : MIN_CHUNK_BYTES, MAX_CHUNK_BYTES)) });
  gunzip.end(bytes);
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      if (total + chunk.length > heldLimit) throw decompressedPastLimit(file, total + chunk.length, limits);
      if (dest !== null && total + chunk.length <= dest.length) {
        dest.set(chunk, total);
      } else {
        if (dest !== null) {
          chunks.push(dest.subarray(0, total));
          dest = null;
        }
        chunks.push(chunk);
      }
      total += chunk.length;
    }
  } catch (error) {
    gunzip.destroy();
    if (error instanceof TraceError) throw error;
    throw new TraceError(file, `not a valid gzip file: ${errorText(error)}`);
  }
  if (dest !== null) return total === dest.length ? dest : dest.subarray(0, total);
  return Buffer.concat(chunks, total);
}

/** gunzipBounded for the synchronous readers: zlib stops at the byte past the limit; the output is one more copy. */
function gunzipBoundedSync(file: string, bytes: Uint8Array, limits: ImportLimits): Uint8Array {
  const isize = trailerSize(bytes);
  const chunkSize = Math.max(MIN_CHUNK_BYTES, Math.min(isize + 1, bytes.length * DEFLATE_MAX_RATIO, MAX_CHUNK_BYTES));
  const heldLimit = Math.min(limits.decompressedBytes, MAX_HELD_BYTES);
  try {
    return gunzipSync(bytes, { maxOutputLength: heldLimit, chunkSize });
  } catch (error) {
    if (error instanceof RangeError || (error as { code?: string } | null)?.code === "ERR_BUFFER_TOO_LARGE") {
      throw decompressedPastLimit(file, heldLimit + 1, limits);
    }
    throw new TraceError(file, `not a valid gzip file: ${errorText(error)}`);
  }
}

/**
 * The refusal of a gzip stream read whole past `found` bytes: the stated limit, or, where the limit
 * was raised past it, the one buffer a trace read whole must fit in.
 */
function decompressedPastLimit(file: string, found: number, limits: ImportLimits): TraceError {
  if (limits.decompressedBytes <= MAX_HELD_BYTES) return limitExceeded(file, "decompressedBytes", `${found} or more`, limits);
  return new TraceError(file, `the gzip stream expands past ${MAX_HELD_BYTES} bytes, the most one buffer holds, which a trace read whole needs (JSON, Arrow, or a gzip trace read in memory); decompress it first, or let readTrace stream a snapshot pickle`);
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function looksLikeJson(bytes: Uint8Array): boolean {
  let i = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  return i < bytes.length && (bytes[i] === 0x7b || bytes[i] === 0x5b);
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function parseJson(bytes: Uint8Array, file: string): unknown {
  // JSON.parse takes one string: a text longer than JavaScript's longest string is a stated limit
  if (bytes.length > MAX_JS_STRING_LENGTH && utf16Length(bytes, 0, bytes.length) > MAX_JS_STRING_LENGTH) {
    throw new TraceError(file, `a JSON snapshot of ${bytes.length} bytes is longer than the longest string JavaScript can hold (${MAX_JS_STRING_LENGTH} UTF-16 code units), which is the largest JSON lakebed reads; save the snapshot as a pickle (torch.cuda.memory._dump_snapshot) instead`);
  }
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new TraceError(file, "invalid JSON: the file is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new TraceError(file, `invalid JSON: ${errorText(error)}`);
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
