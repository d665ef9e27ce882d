import { describe, expect, it } from "vitest";
import { basename } from "node:path";
import { readAccessTrace, readTrace, type Trace } from "@lakebed/traces";
import { DeviceReplay, POLICY_NAMES, policyEntry, replayDevice, type StartStateReport } from "@lakebed/core-sim";
import { bindDriver, CallRecorder, differentialReplay, resolvePolicy, type PolicyName } from "@lakebed/api";
import { openDriver } from "@lakebed/native-cuda";
import { lakebed } from "./support/cli.js";
import { haveSharedTraces, publicTraces } from "./support/shared-traces.js";
import { hostAvailable, liveBackends, withBackends } from "./support/live-drivers.js";

/**
 * Traces recorded mid-run (the ring buffer's truncated fixtures, a GPT-2 recorded after the model
 * was built, the public snapshots) replay live: the policy materializes the rebuilt start state
 * through the driver before the first event (core-sim's start-state-prologue.ts). Under every
 * policy: the live calls are the simulator's, call for call, when it materializes the same start
 * state; with --verify-data every allocation's pattern survives, the start state's blocks included;
 * teardown leaves nothing.
 */
const recorded = (name: string) => `test/fixtures/recorded/${name}.pickle.gz`;
/**
 * The ring buffer's truncated fixtures. The per-policy matrix runs on the shortest mid-run traces
 * (each policy on each takes 0.1 to 4 s here, tiering's about 4 s); the others run under their
 * recorded policy, which rebuilds their layout exactly.
 */
const TRUNCATED_EVERY_POLICY = ["exp_streams_trunc"].map(recorded);
const TRUNCATED_RECORDED_POLICY = ["trunc", "exp_trunc", "msplit_trunc", "streams_trunc"].map(recorded);
/** GPT-2 recorded after the model was built, with its use events (so that tiering replays it too) */
const GPT2_MIDRUN = "test/fixtures/access/gpt2_midrun.def.pickle.gz";
const GPT2_MIDRUN_ACCESS = "test/fixtures/access/gpt2_midrun.def.access.json.gz";
/** the shortest public snapshots (2,811 and 3,840 events): the per-policy matrix */
const SHORT_PUBLIC = ["silmont.forward_bf16_128.pickle", "assignment2.medium_1024_inference.pickle"];
/** one long public snapshot (22,332 events, 399 segments at the start), under its recorded policy */
const LONG_PUBLIC = "assignment2.medium_512_training.pickle";
const publicFile = (name: string) => publicTraces().find((f) => basename(f) === name);

const traces = new Map<string, Promise<Trace>>();
const load = (file: string) =>
  traces.get(file) ?? traces.set(file, file === GPT2_MIDRUN ? readAccessTrace(file, GPT2_MIDRUN_ACCESS) : readTrace(file)).get(file)!;

/**
 * The policies that can replay `trace` live: all of them, but those that read use events only where
 * the trace carries them.
 */
function policiesFor(trace: Trace): PolicyName[] {
  const hasUses = trace.devices.every((d) => (d.access?.uses.length ?? 0) > 0);
  return POLICY_NAMES.filter((p) => hasUses || !policyEntry(p).readsUses);
}

/**
 * `exact`: the policy rebuilds the recorded layout and is the one the trace was recorded under (the
 * caching allocator does not make expandable segments, nor expandable ordinary ones).
 */
function expectMaterialized(s: StartStateReport | undefined, exact: boolean, where: string): void {
  expect(s, where).toBeDefined();
  const start = s!;
  expect(start.method, where).toBe("materialized");
  expect(start.materializingEvents, where).toBeGreaterThanOrEqual(start.recorded.liveBlocks);
  // every live block of the start state is live when the trace begins
  expect(start.atStart.liveBlocks, where).toBe(start.recorded.liveBlocks);
  if (exact) {
    // the recorded layout, segment for segment and block for block (addresses aside)
    expect(start.atStart, where).toEqual(start.recorded);
    expect(start.segmentsRebuilt, where).toBe(start.recorded.segments);
  }
}

async function liveMatchesSimulator(file: string, policiesOf: (trace: Trace) => readonly (PolicyName | undefined)[]): Promise<void> {
  const trace = await load(file);
  const policies = policiesOf(trace);
  const recordedPolicy = resolvePolicy(trace, {}).policy;
  expect(trace.devices.some((d) => d.initialState.length > 0), `${file} starts mid-run`).toBe(true);
  for (const policy of policies) {
    const r = await differentialReplay(trace, { backends: liveBackends, policy, verifyData: true });
    for (const d of r.devices) {
      for (const l of d.live) {
        const where = `${basename(file)} device ${d.device} under ${r.policy} on ${l.backend}`;
        expect(l.divergence, where).toBeNull();
        expect(l.statDifferences, where).toEqual({});
        const doc = l.document;
        const exact = r.policy === recordedPolicy && policyEntry(r.policy).rebuildsRecordedLayout === true;
        if (trace.devices[d.device]?.initialState.length) expectMaterialized(doc.startState, exact, where);
        // one check per allocation served, the materialization's included
        expect(doc.verifiedAllocations, where).toBe(doc.stats["allocation.all.allocated"]);
        expect(doc.verifyFailures, where).toBe(0);
        expect(doc.leaks, where).toEqual({ handles: 0, reservations: 0, mappings: 0, mallocs: 0 });
      }
    }
    expect(r.identical, `${basename(file)} under ${r.policy}`).toBe(true);
  }
}

describe.skipIf(!hostAvailable)("traces recorded mid-run replay live", () => {
  for (const file of [...TRUNCATED_EVERY_POLICY, GPT2_MIDRUN]) {
    it(withBackends(`${basename(file)}: every policy, live calls identical to the simulator's, every pattern intact`), async () => {
      await liveMatchesSimulator(file, policiesFor);
    });
  }

  for (const file of TRUNCATED_RECORDED_POLICY) {
    it(withBackends(`${basename(file)}: its recorded policy, live calls identical to the simulator's, every pattern intact`), async () => {
      await liveMatchesSimulator(file, () => [undefined]);
    });
  }

  for (const name of SHORT_PUBLIC) {
    it.skipIf(!haveSharedTraces)(withBackends(`public ${name}: every policy`), async () => {
      await liveMatchesSimulator(publicFile(name)!, policiesFor);
    });
  }

  it.skipIf(!haveSharedTraces)(withBackends(`public ${LONG_PUBLIC}: its recorded policy`), async () => {
    await liveMatchesSimulator(publicFile(LONG_PUBLIC)!, () => [undefined]);
  });

  it("a policy that allocates afresh materializes what its adoption on the simulator does, call for call", async () => {
    const trace = await load(recorded("streams_trunc"));
    const device = trace.devices[0];
    for (const policy of policiesFor(trace).filter((p) => !policyEntry(p).rebuildsRecordedLayout)) {
      const { conf } = resolvePolicy(trace, { policy });
      const adopted = replayDevice(device, { policy, conf, traceAddresses: false, callLog: true });
      const materialized = replayDevice(device, { policy, conf, traceAddresses: false, callLog: true, startState: "materialize" });
      expect(adopted.startState?.method).toBe("adopted");
      expect(materialized.callLog, policy).toEqual(adopted.callLog);
      expect(materialized.startState?.atStart, policy).toEqual(adopted.startState?.atStart);
      expect(materialized.peakReservedBytes, policy).toBe(adopted.peakReservedBytes);
    }
  });

  it("a byte of a block live at the start, changed behind the policy's back, is caught at its free in the trace", async () => {
    const trace = await load(recorded("trunc"));
    const device = trace.devices[0];
    const { conf } = resolvePolicy(trace, { policy: "lakebed" });
    const driver = openDriver("host");
    try {
      const bound = bindDriver(driver, new CallRecorder());
      // lakebed's materialization allocates the start state's live blocks alone: its first fill is one of them
      let fills = 0;
      const fill = bound.imports.fillPattern;
      bound.imports.fillPattern = (va: number, bytes: number, seed: number) => {
        fill(va, bytes, seed);
        if (++fills === 1) driver.memset(va, 0xee, 1);
      };
      const session = new DeviceReplay(device, { policy: "lakebed", conf, traceAddresses: false, verifyData: true, deviceImports: bound.imports });
      bound.setMemory(session.wasm.memory);
      while (!session.done) session.step();
      const result = session.result();
      expect(result.startState?.method).toBe("materialized");
      expect(result.verifyFailures).toBe(1);
      expect(result.firstVerifyFailureEventIndex).toBeGreaterThanOrEqual(0);
      expect(result.firstVerifyFailureEventIndex).toBeLessThan(device.events.length);
    } finally {
      driver.teardown();
    }
    expect(driver.leakReport().clean).toBe(true);
  });

  it("the CLI replays a truncated trace live with --verify-data and says what the figures count", () => {
    const human = lakebed(["replay", recorded("trunc"), "--backend", "host", "--verify-data"]);
    expect(human.stderr).toBe("");
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/device 0 starts mid-run: its start state \(56 live blocks, .*; 45 segments, .* reserved\) was allocated through the policy in \d+ events before the first, leaving 7.34 GiB reserved in 45 segments \(45 as recorded\); the figures above include those allocations/);
    const json = lakebed(["replay", recorded("trunc"), "--backend", "host", "--verify-data", "--json"]);
    expect(json.status).toBe(0);
    const [d] = JSON.parse(json.stdout).devices;
    expect(d.events).toBe(3000);
    expect(d.startState).toMatchObject({ method: "materialized", segmentsRebuilt: 45 });
    expect(d.startState.atStart).toEqual(d.startState.recorded);
    expect(d.verifyFailures).toBe(0);
  });
});
