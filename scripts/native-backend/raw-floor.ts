// The floor under each driver call of a live replay, and where the time above it goes. The
// replay's recorder wrote every call with its operands; native-cuda's bench/raw_replay makes the
// very same calls again through the raw driver function pointers, in the same run on the same GPU,
// and times each. Each call of the live replay is timed at three layers, from the inside out:
//   driver  the driver function alone, as the backend makes it (DriverCore's timing);
//   core    the C++ backend: DriverCore's whole operation (checks, tables, the driver call);
//   whole   the whole path, from the policy's Wasm import: JS, the N-API crossing, then core.
// `whole` comes from a replay with the native timing off (its clock reads would add to it);
// `driver` and `core` from the next replay, the very same calls, with it on. Per call kind (and
// size): each layer's median against the raw median, and what the C++ layer and the JS + N-API
// layers add to the same call (paired: core - driver, and whole - core within one replay).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEVICE_CALL_NAMES } from "@lakebed/core-sim";
import type { CallRecorder } from "@lakebed/api";
import { summarize, type LatencySummary } from "./latency.js";

export const LAYERS = ["driver", "core", "whole"] as const;
export type Layer = (typeof LAYERS)[number];

export interface CallFloor {
  call: string;
  /** the size class: "2 MiB", "20 MiB", ... (exact bytes) */
  bytes: number;
  /** the same calls through the raw driver (null: no raw floor, as on host memory) */
  raw: LatencySummary | null;
  driver: LatencySummary | null;
  core: LatencySummary | null;
  whole: LatencySummary;
  /** paired, call by call: core - driver (what DriverCore adds), and whole - core in the timed
   * replay (what the import, JS and the N-API crossing add), us */
  cppAdds: LatencySummary | null;
  jsAdds: LatencySummary | null;
  /** (layer median - raw median) / raw median, in percent; null without a raw floor */
  overPercent: Record<Layer, number | null>;
}

export interface ReplayFloor {
  calls: CallFloor[];
  /** all calls of the replay, summed per layer, microseconds (raw: null without a raw floor) */
  totalUs: Record<Layer | "raw", number | null>;
  /** (layer total - raw total) / raw total, in percent */
  totalOverPercent: Record<Layer, number | null>;
  /** maps of N 2 MiB chunks into one range + setAccess over it (segment assembly and stitching) */
  stitchPerChunk: { n: number; whole: LatencySummary | null; core: LatencySummary | null; raw: LatencySummary | null };
  /** what one native clock read cost in the timed replay (each native figure holds two) */
  clockReadNs: number;
}

const pct = (layer: number | null, raw: number | null) => (layer === null || raw === null ? null : (100 * (layer - raw)) / raw);

/** raw_replay's time for each call of `recorder`'s replay (-1: skipped); all -1 without the tool. */
function rawTimes(recorder: CallRecorder, rawReplay: string | null, workDir: string, label: string): Float64Array {
  if (rawReplay === null) return new Float64Array(recorder.count).fill(-1);
  const file = join(workDir, `${label}.calls.txt`);
  writeFileSync(file, recorder.operandLines());
  const out = execFileSync(rawReplay, [file], { encoding: "utf8", maxBuffer: 1 << 28 });
  const raw = Float64Array.from(out.trim().split("\n").map(Number));
  if (raw.length !== recorder.count) throw new Error(`raw_replay timed ${raw.length} calls of ${recorder.count}`);
  return raw;
}

/**
 * `plain`: a replay timed from the import only; `timed`: the next replay of the same trace, with
 * the native timing on. Both made the same calls in the same order (a replay is deterministic);
 * raw_replay makes the timed replay's calls again (null: no raw driver here).
 */
export function rawFloor(plain: CallRecorder, timed: CallRecorder, rawReplay: string | null, workDir: string, label: string): ReplayFloor {
  const { kinds, bytes } = timed.sequence();
  const other = plain.sequence();
  if (other.kinds.length !== kinds.length || other.kinds.some((k, i) => k !== kinds[i] || other.bytes[i] !== bytes[i])) {
    throw new Error(`${label}: the two replays made different calls`);
  }
  const raw = rawTimes(timed, rawReplay, workDir, label);
  const hasRaw = rawReplay !== null;
  const t = { whole: plain.allMicros(), wholeTimed: timed.allMicros(), core: timed.coreMicros(), driver: timed.driverMicros() };

  const groups = new Map<string, { call: string; bytes: number; idx: number[] }>();
  const totals = { raw: 0, driver: 0, core: 0, whole: 0 };
  for (let i = 0; i < kinds.length; i++) {
    if (hasRaw && raw[i] < 0) continue; // the live call failed; nothing to compare
    const call = DEVICE_CALL_NAMES[kinds[i]];
    const key = `${call} ${bytes[i]}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { call, bytes: bytes[i], idx: [] }));
    g.idx.push(i);
    totals.raw += Math.max(0, raw[i]);
    totals.driver += Math.max(0, t.driver[i]);
    totals.core += Math.max(0, t.core[i]);
    totals.whole += t.whole[i];
  }
  const calls: CallFloor[] = [];
  for (const g of groups.values()) {
    const pick = (xs: Float64Array) => g.idx.map((i) => xs[i]);
    const paired = (a: Float64Array, b: Float64Array) => g.idx.filter((i) => a[i] >= 0 && b[i] >= 0).map((i) => a[i] - b[i]);
    const r = summarize(pick(raw));
    const floor: CallFloor = {
      call: g.call,
      bytes: g.bytes,
      raw: r,
      driver: summarize(pick(t.driver)),
      core: summarize(pick(t.core)),
      whole: summarize(pick(t.whole))!,
      cppAdds: summarize(paired(t.core, t.driver), true),
      jsAdds: summarize(paired(t.wholeTimed, t.core), true),
      overPercent: { driver: null, core: null, whole: null },
    };
    for (const layer of LAYERS) floor.overPercent[layer] = pct(floor[layer]?.medianUs ?? null, r?.medianUs ?? null);
    calls.push(floor);
  }
  calls.sort((a, b) => b.whole.n * b.whole.medianUs - a.whole.n * a.whole.medianUs);
  const rawTotal = hasRaw ? totals.raw : null;
  return {
    calls,
    totalUs: { raw: rawTotal, driver: totals.driver, core: totals.core, whole: totals.whole },
    totalOverPercent: { driver: pct(totals.driver, rawTotal), core: pct(totals.core, rawTotal), whole: pct(totals.whole, rawTotal) },
    stitchPerChunk: stitches(kinds, bytes, { whole: t.whole, core: t.core, raw }, hasRaw),
    clockReadNs: timed.nativeClockReadNs(),
  };
}

const MAP = DEVICE_CALL_NAMES.indexOf("map");
const SET_ACCESS = DEVICE_CALL_NAMES.indexOf("setAccess");
const CHUNK_BYTES = 2 << 20;

/** Runs of N >= 2 maps of one 2 MiB chunk each, right before a setAccess of N chunks. */
function stitches(
  kinds: Uint8Array,
  bytes: Float64Array,
  t: Record<"whole" | "core" | "raw", Float64Array>,
  hasRaw: boolean,
): ReplayFloor["stitchPerChunk"] {
  const per = { whole: [] as number[], core: [] as number[], raw: [] as number[] };
  let n = 0;
  for (let i = 0; i < kinds.length; i++) {
    if (kinds[i] !== SET_ACCESS) continue;
    const chunks = bytes[i] / CHUNK_BYTES;
    if (chunks < 2 || !Number.isInteger(chunks) || i < chunks) continue;
    let ok = !hasRaw || t.raw[i] >= 0;
    for (let j = i - chunks; j < i; j++) if (kinds[j] !== MAP || bytes[j] !== CHUNK_BYTES || (hasRaw && t.raw[j] < 0)) ok = false;
    if (!ok) continue;
    for (const layer of ["whole", "core", "raw"] as const) {
      let sum = 0;
      for (let j = i - chunks; j <= i && sum >= 0; j++) sum = t[layer][j] < 0 ? -1 : sum + t[layer][j];
      per[layer].push(sum < 0 ? -1 : sum / chunks); // -1: a call without this layer's figure
    }
    n++;
  }
  return { n, whole: summarize(per.whole), core: summarize(per.core), raw: summarize(per.raw) };
}
