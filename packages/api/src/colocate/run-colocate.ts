// `lakebed colocate`: a scenario's tenants replayed together under each strategy, with the
// reserve planned first. The result is what --json prints and the HTML report draws.
import { loadTrace } from "../load.js";
import { ScenarioError, type Scenario } from "./scenario.js";
import { segmentTrace, type SegmentedTrace } from "./trace-segments.js";
import { planReserve, type ReservePlan } from "./reserve-plan.js";
import { ADJUST_US, runStrategy, STRATEGIES, type StrategyName, type StrategyRun } from "./colocate-engine.js";
import { driverMicros } from "./driver-costs.js";
import { CHUNK_BYTES } from "./shared-pool.js";
import { dedupFigure, dedupSweep, type DedupFigure, type DedupTenant } from "./dedup-figures.js";
import { joinParameters, type ParameterJoin } from "./parameter-chunks.js";
import { defaultAllocConf, replayDevice } from "@lakebed/core-sim";
import { readFingerprints, type DeviceTrace } from "@lakebed/traces";

export interface ColocateResult {
  scenario: string;
  capacityBytes: number;
  durationS: number;
  sloMs: number;
  idleS: number;
  /** W: given in the scenario, or planned */
  reserve: ReservePlan & { planned: boolean };
  tenants: {
    name: string;
    kind: string;
    policy: string;
    trace: string;
    prologueBytes: number;
    segments: number;
    segmentMeanUs: number;
    peakAboveRestBytes: number;
    ratePerS: number;
    /** its fingerprints joined to its trace: storages, found as kept blocks, written after load, whole chunks shared */
    parameters: { storages: number; joined: number; written: number; sharedChunks: number } | null;
  }[];
  /**
   * What handing 1 GiB to inference costs by the cost model: from the reserve (zero-fill of 512
   * chunks), by an adjustment (plus ADJUST_US), and PyTorch's free-then-malloc (cudaFree + cudaMalloc
   * of 1 GiB, without the wait for training's step to end, which the runs measure)
   */
  costs: { zeroFillChunkUs: number; adjustUs: number; cudaMalloc1GiBUs: number; cudaFree1GiBUs: number; handover1GiBFromReserveUs: number; handover1GiBByAdjustUs: number; freeThenMalloc1GiBUs: number };
  runs: StrategyRun[];
  /** with fingerprints: the fingerprinted tenants' memory with and without dedup, and N = 1..8 copies of the first */
  dedup: { tenants: string[]; figure: DedupFigure; sweepOf: string | null; sweep: DedupFigure[] } | null;
}

export interface ColocateOptions {
  strategies?: readonly StrategyName[];
  showProgress?: boolean;
  /** run `run` of `runs` (the strategies, and handover with dedup), at doneUs of totalUs simulated */
  onProgress?(run: number, runs: number, doneUs: number, totalUs: number): void;
  checkEvery?: number;
}

export async function runColocate(scenario: Scenario, options: ColocateOptions = {}): Promise<ColocateResult> {
  const cache = new Map<string, SegmentedTrace>();
  const devices = new Map<string, DeviceTrace>();
  const traces: SegmentedTrace[] = [];
  for (const [i, t] of scenario.tenants.entries()) {
    let s = cache.get(t.trace);
    if (!s) {
      try {
        const trace = await loadTrace(t.trace, options.showProgress ?? false, { withAccess: true });
        if (trace.devices.length !== 1) throw new Error(`${trace.devices.length} devices; a colocate tenant is one device's trace`);
        s = segmentTrace(trace.devices[0]);
        devices.set(t.trace, trace.devices[0]);
      } catch (e) {
        // the trace's own one-line error, said where the scenario names it
        throw new ScenarioError(`${scenario.file}: $.tenants[${i}].trace: ${(e as Error).message.split("\n")[0]}`);
      }
      cache.set(t.trace, s);
    }
    traces.push(s);
  }
  const sumBytes = (o: SegmentedTrace["prologue"]) => {
    let b = 0;
    for (let i = 0; i < o.length; i++) if (o.isAlloc[i]) b += o.bytes[i];
    return b;
  };
  const tenants = scenario.tenants.map((t, i) => {
    const s = traces[i];
    return {
      name: t.name,
      kind: t.kind,
      policy: t.policy,
      trace: t.trace,
      prologueBytes: sumBytes(s.prologue),
      segments: s.segments.length,
      segmentMeanUs: s.segments.reduce((a, g) => a + g.durationUs, 0) / s.segments.length,
      peakAboveRestBytes: Math.max(...s.segments.map((g) => g.peakAboveRestBytes)),
      ratePerS: t.arrivalsPerS,
      parameters: null as ColocateResult["tenants"][number]["parameters"],
    };
  });
  const zeroFillChunkUs = driverMicros("memset", CHUNK_BYTES);
  const models = tenants.filter((t) => t.kind === "inference").map((t) => ({ bytes: t.peakAboveRestBytes, ratePerS: t.ratePerS }));
  const adjustMissesSlo = ADJUST_US + zeroFillChunkUs > scenario.sloMs * 1000;
  const plan = planReserve(models, scenario.idleS, adjustMissesSlo, scenario.sloTarget);
  const reserve = scenario.watermarkBytes === null ? { ...plan, planned: true } : { ...plan, watermarkBytes: scenario.watermarkBytes, planned: false };
  const joins = joinAll(scenario, traces, devices);
  joins.forEach((j, i) => {
    if (j !== null) tenants[i].parameters = { storages: j.storages, joined: j.joined, written: j.written, sharedChunks: [...j.byPrologueOp.values()].reduce((n, b) => n + b.digests.length, 0) };
  });
  const plans: { strategy: StrategyName; parameters?: (ParameterJoin | null)[] }[] = (options.strategies ?? STRATEGIES).map((strategy) => ({ strategy }));
  // with fingerprints, handover once more with the tenants' identical read-only chunks shared
  if (joins.some((j) => j !== null) && plans.some((p) => p.strategy === "handover")) plans.push({ strategy: "handover", parameters: joins });
  const runs = plans.map(({ strategy, parameters }, i) =>
    runStrategy(scenario, traces, strategy, {
      watermarkBytes: reserve.watermarkBytes,
      parameters,
      checkEvery: options.checkEvery,
      onProgress: (done, total) => options.onProgress?.(i, plans.length, done, total),
    }),
  );
  return {
    dedup: dedupOf(scenario, devices),
    scenario: scenario.file,
    capacityBytes: scenario.capacityBytes,
    durationS: scenario.durationS,
    sloMs: scenario.sloMs,
    idleS: scenario.idleS,
    reserve,
    tenants,
    costs: {
      zeroFillChunkUs,
      adjustUs: ADJUST_US,
      cudaMalloc1GiBUs: driverMicros("malloc", 2 ** 30),
      cudaFree1GiBUs: driverMicros("free", 2 ** 30),
      handover1GiBFromReserveUs: (2 ** 30 / CHUNK_BYTES) * zeroFillChunkUs,
      handover1GiBByAdjustUs: ADJUST_US + (2 ** 30 / CHUNK_BYTES) * zeroFillChunkUs,
      freeThenMalloc1GiBUs: driverMicros("free", 2 ** 30) + driverMicros("malloc", 2 ** 30),
    },
    runs,
  };
}

/** Dedup figures for the tenants with fingerprints (null: none has any). */
function dedupOf(scenario: Scenario, devices: Map<string, DeviceTrace>): ColocateResult["dedup"] {
  const alone = new Map<string, number>();
  const tenants: DedupTenant[] = [];
  let inference: DedupTenant | null = null;
  for (const [i, t] of scenario.tenants.entries()) {
    if (t.fingerprints === null) continue;
    const key = `${t.trace}\0${t.policy}`;
    let bytes = alone.get(key);
    if (bytes === undefined) {
      // what the tenant needs alone: its whole trace replayed through its policy, peak reserved
      bytes = replayDevice(devices.get(t.trace)!, { policy: t.policy, conf: defaultAllocConf(), traceAddresses: false }).peakReservedBytes;
      alone.set(key, bytes);
    }
    try {
      tenants.push({ name: t.name, aloneBytes: bytes, fingerprints: readFingerprints(t.fingerprints) });
      if (t.kind === "inference") inference ??= tenants[tenants.length - 1];
    } catch (e) {
      throw new ScenarioError(`${scenario.file}: $.tenants[${i}].fingerprints: ${(e as Error).message}`);
    }
  }
  if (tenants.length === 0) return null;
  // the sweep is N processes of one model loaded with the same weights: an inference tenant's
  return { tenants: tenants.map((t) => t.name), figure: dedupFigure(tenants), sweepOf: inference?.name ?? null, sweep: inference ? dedupSweep(inference) : [] };
}

/** Each tenant's fingerprints joined to its trace's kept blocks (null: no fingerprints). */
function joinAll(scenario: Scenario, traces: SegmentedTrace[], devices: Map<string, DeviceTrace>): (ParameterJoin | null)[] {
  return scenario.tenants.map((t, i) => {
    if (t.fingerprints === null) return null;
    try {
      return joinParameters(devices.get(t.trace)!, traces[i].prologue, readFingerprints(t.fingerprints));
    } catch (e) {
      throw new ScenarioError(`${scenario.file}: $.tenants[${i}].fingerprints: ${(e as Error).message}`);
    }
  });
}
