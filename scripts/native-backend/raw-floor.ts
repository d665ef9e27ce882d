// The floor under each driver call of a live replay: the replay's recorder wrote every call with
// its operands; native-cuda's bench/raw_replay makes the very same calls again through the raw
// driver function pointers, in the same run on the same GPU, and times each. Per call kind (and
// size), the backend's median against the raw median; and over the whole replay, the backend's
// total time in driver calls against the raw total: the overhead the native backend adds.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEVICE_CALL_NAMES } from "@lakebed/core-sim";
import type { CallRecorder } from "@lakebed/api";
import { summarize, type LatencySummary } from "./latency.js";

export interface CallFloor {
  call: string;
  /** the size class: "2 MiB", "20 MiB", ... (exact bytes) */
  bytes: number;
  backend: LatencySummary;
  raw: LatencySummary;
  /** (backend median - raw median) / raw median, in percent */
  overheadPercent: number;
}

export interface ReplayFloor {
  calls: CallFloor[];
  /** all calls of the replay: the backend's summed time and the raw summed time, microseconds */
  backendTotalUs: number;
  rawTotalUs: number;
  /** (backendTotal - rawTotal) / rawTotal, in percent */
  totalOverheadPercent: number;
  /** maps of N 2 MiB chunks into one range + setAccess over it (segment assembly and stitching) */
  stitchPerChunk: { n: number; backend: LatencySummary | null; raw: LatencySummary | null };
}

export function rawFloor(recorder: CallRecorder, rawReplay: string, workDir: string, label: string): ReplayFloor {
  const file = join(workDir, `${label}.calls.txt`);
  writeFileSync(file, recorder.operandLines());
  const out = execFileSync(rawReplay, [file], { encoding: "utf8", maxBuffer: 1 << 28 });
  const raw = out.trim().split("\n").map(Number);
  const backend = recorder.allMicros();
  const { kinds, bytes } = recorder.sequence();
  if (raw.length !== kinds.length) throw new Error(`raw_replay timed ${raw.length} calls of ${kinds.length}`);

  const groups = new Map<string, { call: string; bytes: number; backend: number[]; raw: number[] }>();
  let backendTotalUs = 0;
  let rawTotalUs = 0;
  for (let i = 0; i < kinds.length; i++) {
    if (raw[i] < 0) continue; // the live call failed; nothing to compare
    const call = DEVICE_CALL_NAMES[kinds[i]];
    const key = `${call} ${bytes[i]}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { call, bytes: bytes[i], backend: [], raw: [] }));
    g.backend.push(backend[i]);
    g.raw.push(raw[i]);
    backendTotalUs += backend[i];
    rawTotalUs += raw[i];
  }
  const calls: CallFloor[] = [];
  for (const g of groups.values()) {
    const b = summarize(g.backend)!;
    const r = summarize(g.raw)!;
    calls.push({ call: g.call, bytes: g.bytes, backend: b, raw: r, overheadPercent: (100 * (b.medianUs - r.medianUs)) / r.medianUs });
  }
  calls.sort((a, b) => b.backend.n * b.backend.medianUs - a.backend.n * a.backend.medianUs);
  return {
    calls,
    backendTotalUs,
    rawTotalUs,
    totalOverheadPercent: (100 * (backendTotalUs - rawTotalUs)) / rawTotalUs,
    stitchPerChunk: stitches(kinds, bytes, backend, raw),
  };
}

const MAP = DEVICE_CALL_NAMES.indexOf("map");
const SET_ACCESS = DEVICE_CALL_NAMES.indexOf("setAccess");
const CHUNK_BYTES = 2 << 20;

/** Runs of N >= 2 maps of one 2 MiB chunk each, right before a setAccess of N chunks. */
function stitches(kinds: Uint8Array, bytes: Float64Array, backend: Float64Array, raw: number[]): ReplayFloor["stitchPerChunk"] {
  const b: number[] = [];
  const r: number[] = [];
  let n = 0;
  for (let i = 0; i < kinds.length; i++) {
    if (kinds[i] !== SET_ACCESS) continue;
    const chunks = bytes[i] / CHUNK_BYTES;
    if (chunks < 2 || !Number.isInteger(chunks) || i < chunks) continue;
    let ok = true;
    for (let j = i - chunks; j < i; j++) if (kinds[j] !== MAP || bytes[j] !== CHUNK_BYTES || raw[j] < 0) ok = false;
    if (!ok || raw[i] < 0) continue;
    let sb = backend[i];
    let sr = raw[i];
    for (let j = i - chunks; j < i; j++) {
      sb += backend[j];
      sr += raw[j];
    }
    b.push(sb / chunks);
    r.push(sr / chunks);
    n++;
  }
  return { n, backend: summarize(b), raw: summarize(r) };
}
