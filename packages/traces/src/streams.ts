/**
 * Stream renumbering (INV-TRACE-2): a device's streams are the raw `cudaStream_t` values seen in its
 * events or its segments, sorted ascending by raw value, and stream indices are positions in that
 * list. Sorting by raw value (not first appearance, as PyTorch's viewer does) keeps index order equal
 * to PyTorch's own free-block ordering, which compares stream pointers first.
 */
import type { RawStream } from "./column-builder.js";

export interface StreamTable {
  /** raw values, ascending */
  streams: bigint[];
  indexOf(raw: RawStream): number;
}

export function buildStreamTable(raws: Iterable<RawStream>): StreamTable {
  const unique = new Set<bigint>();
  for (const raw of raws) unique.add(BigInt(raw));
  const streams = [...unique].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map<bigint, number>(streams.map((s, i) => [s, i]));
  return {
    streams,
    indexOf: (raw) => index.get(BigInt(raw))!,
  };
}

/** Rewrites a column of provisional stream ids (indices into `rawStreams`) to table indices. */
export function renumberStreamColumn(column: Uint32Array, rawStreams: readonly RawStream[], table: StreamTable): void {
  const remap = new Uint32Array(rawStreams.length);
  rawStreams.forEach((raw, i) => (remap[i] = table.indexOf(raw)));
  for (let i = 0; i < column.length; i++) column[i] = remap[column[i]];
}
