/**
 * The entry point: reads a trace file in any supported format into the Trace model.
 *
 * The format is detected from the content, never from the file name:
 *   1f 8b            gzip: decompressed with node:zlib, then detected again (once)
 *   "ARROW1"         lakebed's Arrow IPC trace file (arrow-format.ts)
 *   '{' or '['       a snapshot saved with json.dump (leading whitespace and a UTF-8 BOM allowed)
 *   anything else    a pickle; the data-only decoder refuses whatever is not plain data
 *
 * Progress is reported in bytes of the file on disk: decoding reports how far it got into the
 * (decompressed) payload, scaled to the file size, and the last call is (size, size).
 */
import { readFileSync } from "node:fs";
import { open, readFile, stat } from "node:fs/promises";
import { gunzip, gunzipSync } from "node:zlib";
import { promisify } from "node:util";
import { constants as bufferConstants } from "node:buffer";
import type { Trace } from "./model.js";
import { TraceError } from "./trace-error.js";
import { decodeSnapshotPickle, type PickleDecoderChoice } from "./pickle-input.js";
import { decodeSnapshotJson } from "./json-input.js";
import { assembleTrace } from "./assemble-trace.js";
import { isArrowTrace, readTraceArrowBytes } from "./arrow-format.js";
import { inputView } from "./entry-scanner.js";
import { MAX_JS_STRING_LENGTH, utf16Length } from "./pickle-scalars.js";

export interface ReadTraceOptions {
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** Pickles only: "js" turns the WebAssembly entry scanner off (same result; tests compare the two). */
  decoder?: PickleDecoderChoice;
}

const gunzipAsync = promisify(gunzip);
const PICKLE_PROTO = 0x80;
const MIN_CHUNK_BYTES = 64 * 1024;
const MAX_CHUNK_BYTES = 256 * 1024 * 1024;
const DEFLATE_MAX_RATIO = 1032;
/** A decompressed trace larger than this is refused (a gzip bomb must not exhaust memory). */
const MAX_DECOMPRESSED_BYTES = Math.min(bufferConstants.MAX_LENGTH, 4 * 1024 ** 3 - 1);

export async function readTrace(path: string, opts: ReadTraceOptions = {}): Promise<Trace> {
  const bytes = await readInput(path);
  const payload = isGzip(bytes) ? await gunzipChecked(path, () => gunzipAsync(bytes, gunzipOptions(bytes))) : bytes;
  return decodeTrace(payload, path, isGzip(bytes), bytes.length, opts);
}

export function readTraceSync(path: string, opts: ReadTraceOptions = {}): Trace {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new TraceError(path, `cannot read the file: ${errorText(error)}`);
  }
  const payload = isGzip(bytes) ? gunzipCheckedSync(path, () => gunzipSync(bytes, gunzipOptions(bytes))) : bytes;
  return decodeTrace(payload, path, isGzip(bytes), bytes.length, opts);
}

/** Decodes a trace held in memory; `file` names it in errors. */
export function parseTrace(bytes: Uint8Array, file: string, opts: ReadTraceOptions = {}): Trace {
  const payload = isGzip(bytes) ? gunzipCheckedSync(file, () => gunzipSync(bytes, gunzipOptions(bytes))) : bytes;
  return decodeTrace(payload, file, isGzip(bytes), bytes.length, opts);
}

function decodeTrace(payload: Uint8Array, file: string, gzip: boolean, fileBytes: number, opts: ReadTraceOptions): Trace {
  const { onProgress } = opts;
  if (payload.length === 0) throw new TraceError(file, gzip ? "the gzip stream is empty" : "the file is empty");
  const scaled = onProgress === undefined ? undefined : (done: number, total: number) => onProgress(Math.round((done / total) * fileBytes), fileBytes);
  let trace: Trace;
  if (isArrowTrace(payload)) {
    trace = readTraceArrowBytes(payload, { file, gzip });
  } else if (looksLikeJson(payload)) {
    trace = assembleTrace(decodeSnapshotJson(parseJson(payload, file), { file, gzip }));
  } else {
    trace = assembleTrace(decodePickleOrExplain(payload, file, gzip, scaled, opts.decoder));
  }
  onProgress?.(fileBytes, fileBytes);
  return trace;
}

/** A file that fails on its very first byte is most likely not a pickle at all: say what was expected. */
function decodePickleOrExplain(payload: Uint8Array, file: string, gzip: boolean, onProgress?: (done: number, total: number) => void, decoder?: PickleDecoderChoice) {
  try {
    return decodeSnapshotPickle(payload, { file, gzip }, onProgress, decoder);
  } catch (error) {
    if (error instanceof TraceError && error.where.byteOffset === 0 && payload[0] !== PICKLE_PROTO) {
      throw new TraceError(file, `not a trace file lakebed reads (a PyTorch snapshot pickle, its JSON, or lakebed's Arrow format): ${error.detail}`, error.where);
    }
    throw error;
  }
}

async function readInput(path: string): Promise<Uint8Array> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new TraceError(path, "not a regular file");
    // straight into the entry scanner's memory where it can take it (see inputView)
    const view = inputView(info.size);
    return view === null ? await readFile(path) : await readInto(path, view);
  } catch (error) {
    if (error instanceof TraceError) throw error;
    throw new TraceError(path, `cannot read the file: ${errorText(error)}`);
  }
}

/** Reads the file into `view`: its first view.length bytes (fewer if it shrank since its stat). */
async function readInto(path: string, view: Uint8Array): Promise<Uint8Array> {
  const handle = await open(path, "r");
  try {
    let done = 0;
    while (done < view.length) {
      const { bytesRead } = await handle.read(view, done, view.length - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === view.length ? view : view.subarray(0, done);
  } finally {
    await handle.close();
  }
}

/**
 * Decompression in one output chunk where possible: with zlib's default 16 KiB chunks, the async
 * gunzip of a 24 MB trace took twice as long as the whole decode (one thread-pool round trip per
 * chunk). The gzip trailer's ISIZE is the size mod 2^32; a lying one only costs an allocation
 * bounded by deflate's best ratio (1032:1) and MAX_CHUNK_BYTES.
 */
function gunzipOptions(bytes: Uint8Array): { maxOutputLength: number; chunkSize: number } {
  const n = bytes.length;
  const isize = n >= 4 ? (bytes[n - 4] | (bytes[n - 3] << 8) | (bytes[n - 2] << 16)) + bytes[n - 1] * 16777216 : 0;
  const chunkSize = Math.max(MIN_CHUNK_BYTES, Math.min(isize + 1, n * DEFLATE_MAX_RATIO, MAX_CHUNK_BYTES));
  return { maxOutputLength: MAX_DECOMPRESSED_BYTES, chunkSize };
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

async function gunzipChecked(file: string, run: () => Promise<Uint8Array>): Promise<Uint8Array> {
  try {
    return await run();
  } catch (error) {
    throw gunzipError(file, error);
  }
}

function gunzipCheckedSync(file: string, run: () => Uint8Array): Uint8Array {
  try {
    return run();
  } catch (error) {
    throw gunzipError(file, error);
  }
}

function gunzipError(file: string, error: unknown): TraceError {
  if (error instanceof RangeError || (error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
    return new TraceError(file, `decompressed trace is larger than ${MAX_DECOMPRESSED_BYTES} bytes`);
  }
  return new TraceError(file, `not a valid gzip file: ${errorText(error)}`);
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
