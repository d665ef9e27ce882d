import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { loadTrace, replayLive } from "@lakebed/api";
import { POLICY_NAMES, DEVICE_CALL_NAMES, modelCapacityBytes, confFromSettings, parseAllocConf } from "@lakebed/core-sim";
import { Action } from "@lakebed/traces";
import { torchPaths } from "@lakebed/torch";
import { lakebed, tempFile } from "./support/cli.js";
import { repoRoot } from "./support/shared-traces.js";
import { liveBackends } from "./support/live-drivers.js";

/**
 * liblakebed_torch.so (packages/torch) on the host driver, driven by its harness exactly as PyTorch
 * drives it (the same C entry points). Without wasm2c or a compiler the build skips the library and
 * these tests skip, saying so; CI sets LAKEBED_REQUIRE_TORCH_LIB=1 (in .ci/run) and then a missing
 * library fails here instead.
 */
const paths = torchPaths();
const required = process.env.LAKEBED_REQUIRE_TORCH_LIB === "1";
const skip = !paths.built && !required;
const why = "liblakebed_torch.so was not built (apt-get install wabt g++, then npm run build)";
const policies = POLICY_NAMES.filter((p) => p !== "tiering");

function harness(args: string[], env: Record<string, string> = {}): Record<string, unknown> {
  if (!paths.built) throw new Error(`${why}; LAKEBED_REQUIRE_TORCH_LIB=1 makes that a failure`);
  return JSON.parse(execFileSync(paths.harness, args, { encoding: "utf8", timeout: 60_000, env: { ...process.env, ...env } }));
}

function replay(path: string, policy: string): { stats: Record<string, number>; peakAllocatedBytes: number; peakReservedBytes: number; ooms: number; driverCalls: Record<string, number> } {
  // no per-process limit to speak of; the device's total comes from the snapshot (lakebed_device_total:
  // the host's memory, which sizes the library's expandable reservations), the settings
  // (lakebed_large_page_mb and the like) too, as for a user
  const r = lakebed(["replay", path, "--policy", policy, "--capacity", "1TiB", "--json"], 120_000);
  expect(r.stderr).toBe("");
  return JSON.parse(r.stdout).devices[0];
}

describe.skipIf(skip)(`liblakebed_torch.so under threads and streams${skip ? ` (skipped: ${why})` : ""}`, () => {
  it("was compiled from the core-sim.wasm the simulator loads (else every comparison below is moot)", () => {
    const wasm = readFileSync(resolve(repoRoot, "packages/core-sim/dist/core-sim.wasm"));
    const built = readFileSync(resolve(paths.library, "../gen/core_sim.hash"), "utf8").split(" ")[0];
    expect(built, "rebuild packages/torch after packages/core-sim (turbo does)").toBe(createHash("sha256").update(wasm).digest("hex").slice(0, 16));
  });
  for (const policy of policies) {
    it(`${policy}: 4 threads on 3 simulated streams, every check pattern intact`, () => {
      // 4 client threads x 1,500 random operations; a quarter of the blocks used by a second stream
      const r = harness(["stress", policy, "20261202", "4", "3", "1500"]);
      expect(r.check).toBe("");
      expect(r.failures).toBe(0);
      expect(r.checks as number).toBeGreaterThan(3000);
      expect(r.recordStreams as number).toBeGreaterThan(300);
      expect(r.mallocs).toBe(r.frees);
      expect(r.pendingAtEnd).toBe(0);
      const stats = r.stats as Record<string, number>;
      expect(stats["allocated_bytes.all.current"]).toBe(0);
      expect(stats["allocation.all.allocated"]).toBe(r.mallocs);
    });
  }
});

describe.skipIf(skip)("fences before an unmap trust a marker only once its stream passed it", () => {
  // Every 256th free of a stream records a marker event; a fence takes a completed marker as
  // covering the frees before it and otherwise waits. A longer lakebed run on 3 streams moves chunks
  // between pages freed on other streams often enough that a marker taken as complete too early
  // shows as changed patterns or a fault (with lakebed as of commit 0c0da1a, a build that took
  // every marker as complete failed 4 of 5 such runs and 3 of 30 short ones; the correct build
  // passed 80 short runs and 6 of these).
  for (const seed of [5001, 5002]) {
    it(`lakebed: 4 threads x 6,000 operations on 3 streams (seed ${seed}), every check pattern intact`, () => {
      const r = harness(["stress", "lakebed", String(seed), "4", "3", "6000"]);
      expect(r.check).toBe("");
      expect(r.failures).toBe(0);
      expect(r.checks as number).toBeGreaterThan(14000);
      expect(r.fenceWaits as number).toBeGreaterThan(0);
      expect(r.pendingAtEnd).toBe(0);
    });
  }
});

describe.skipIf(skip)("an out-of-memory as PyTorch raises it", () => {
  // PyTorch's CUDAPluggableAllocator takes a null return for a pointer (and the first kernel faults
  // the device), so the library throws; torch's HANDLE_TH_ERRORS makes c10::OutOfMemoryError
  // torch.OutOfMemoryError and any other exception a RuntimeError. Here the c10 is the harness's
  // stand-in (harness/c10_standin.h), caught by type as torch catches it.
  for (const policy of ["caching", "lakebed"]) {
    it(`${policy}: bound to c10, a c10::OutOfMemoryError with PyTorch's message, destroyed once; the allocator serves on`, () => {
      const r = harness(["oom", policy, "bound"]);
      expect(r.bindError).toBe("");
      expect(r.caught).toBe("c10::OutOfMemoryError");
      // PyTorch's format_size: 1 GiB is "1024.00 MiB", as its own allocator writes it
      expect(r.message).toMatch(/^CUDA out of memory\. Tried to allocate 1024\.00 MiB\. GPU 0 has a total capacity of 64\.00 MiB/);
      expect(r.standinErrorsDestroyed).toBe(1);
      expect(r.servesAfter).toBe(true);
      expect(r.check).toBe("");
    });
  }
  it("unbound (no PyTorch loaded), a std::runtime_error with the same message", () => {
    const r = harness(["oom", "caching", "unbound"]);
    expect(r.caught).toBe("std::exception");
    expect(r.message).toMatch(/^CUDA out of memory\. Tried to allocate 1024\.00 MiB\./);
    expect(r.standinErrorsDestroyed).toBe(0);
  });
  it("a request for another device than the one enabled is refused with the device to enable, and device 0 is served on", () => {
    // memory mapped for device 0 would fault in device 1's kernels: the library must not hand it out
    const r = harness(["oom", "lakebed", "other-device"]);
    expect(r.caught).toBe("std::exception");
    expect(r.message).toBe(
      "lakebed_torch serves CUDA device 0 (lakebed_torch.enable(device=0)) and was asked for memory on device 1: one device a process; torch.cuda.set_device(0) before allocating, or enable(device=1) before the first CUDA allocation",
    );
    expect(r.servesAfter).toBe(true);
    expect(r.check).toBe("");
    // a memory fraction for another device is not applied to this one
    const f = harness(["oom", "lakebed", "other-device-fraction"]);
    expect(f.caught).toBe("std::exception");
    expect(f.message).toMatch(/^lakebed_torch serves CUDA device 0 \(lakebed_torch\.enable\(device=0\)\) and was asked for a memory fraction on device 1: /);
    expect(f.servesAfter).toBe(true);
  });
});

/** A trace's requests as the harness's replay reads them (host_harness.cc says the format). */
function requestLines(events: { length: number; action: Uint8Array; size: Float64Array; stream: Uint32Array; blockId: Int32Array }): string {
  const lines: string[] = [];
  for (let i = 0; i < events.length; i++) {
    const a = events.action[i];
    if (a === Action.Alloc) lines.push(`a ${events.blockId[i]} ${events.size[i]} ${events.stream[i]}`);
    else if (a === Action.FreeRequested) lines.push(`r ${events.blockId[i]}`);
    else if (a === Action.FreeCompleted) lines.push(`c ${events.blockId[i]}`);
    else if (a === Action.Oom) lines.push(`o ${events.size[i]} ${events.stream[i]}`);
  }
  return lines.join("\n") + "\n";
}

describe.skipIf(skip || !liveBackends.includes("host"))("the library and the Node addon make the same device calls", () => {
  const tracePath = resolve(repoRoot, "samples/two_streams.def.pickle.gz");
  for (const policy of policies) {
    it(`${policy}: two_streams.def, call for call`, async () => {
      const trace = await loadTrace(tracePath);
      const [device] = trace.devices;
      const { runs } = await replayLive(trace, { backend: "host", policy });
      // the library is driven by requests only: the replay must not have needed an empty_cache it inferred
      expect(runs[0].result.emptyCacheCalls).toBe(0);
      const conf = confFromSettings(trace.allocatorSettings);
      const capacity = modelCapacityBytes(device, { conf });
      const total = capacity; // no fraction set: the model's capacity is the device's total
      const events = tempFile("requests.txt", requestLines(device.events));
      const lib = harness(["replay", policy, String(total), String(capacity), events]);
      expect(lib.check).toBe("");
      const addon = runs[0].calls;
      const names = (kinds: ArrayLike<number>) => Array.from(kinds, (k) => DEVICE_CALL_NAMES[k]);
      expect(names(lib.kinds as number[])).toEqual(names(addon.kinds));
      expect(lib.bytes).toEqual(Array.from(addon.bytes));
      expect(lib.failedAllocs).toBe(runs[0].result.failedAllocs);
    });
  }
});

describe.skipIf(skip)("a snapshot python/lakebed_torch wrote from the library", () => {
  // test/support/torch_snapshot.py: the library on the host driver, a seeded run, the snapshot
  // written by the module's own dump_snapshot (no GPU, no PyTorch needed for that part)
  function write(policy: string, seed: number, conf = ""): { path: string; stats: Record<string, number> } {
    const path = tempFile(`${policy}.pickle`, "");
    const out = execFileSync("python3", [resolve(repoRoot, "test/support/torch_snapshot.py"), policy, String(seed), "3000", path, conf], {
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, PYTHONPATH: resolve(repoRoot, "python"), LAKEBED_TORCH_LIB: paths.library },
    });
    return { path, stats: JSON.parse(out) };
  }
  for (const policy of policies) {
    it(`${policy}: lakebed replay predicts the peaks the library had`, () => {
      const { path, stats } = write(policy, 7);
      const d = replay(path, policy);
      expect(d.ooms).toBe(0);
      expect(d.peakAllocatedBytes).toBe(stats["allocated_bytes.all.peak"]);
      expect(d.peakReservedBytes).toBe(stats["reserved_bytes.all.peak"]);
    });
  }
  // With 2 MiB pages lakebed moves chunks between pages inside its mallocs (an unmap, then a map):
  // before the snapshot named its empty_cache calls, the replay took each move's segment_unmap for an
  // empty_cache (mallocWouldRelease answers for releases only) and predicted 178,257,920 B reserved
  // at seed 7 against the library's 171,966,464, with 812 maps against 448.
  for (const seed of [7, 11]) {
    it(`lakebed moving chunks (2 MiB pages, seed ${seed}): its own snapshot replays to every statistic and device call the library had`, async () => {
      const conf = "lakebed_large_page_mb:2";
      const { path, stats } = write("lakebed", seed, conf);
      const [device] = (await loadTrace(path)).devices;
      // torch_snapshot.py calls empty_cache every 500 operations; the snapshot says where
      expect(device.emptyCacheAt?.length).toBeGreaterThan(0);
      const d = replay(path, "lakebed");
      expect(stats["num_device_free"], "the run must unmap to test anything").toBeGreaterThan(100);
      const { driver_calls: calls, ...libraryStats } = stats;
      expect(d.stats).toEqual(libraryStats);
      expect(Object.values(d.driverCalls).reduce((a, b) => a + b, 0)).toBe(calls);
      // lakebed's Arrow format carries the marks (in the settings)
      const arrow = resolve(tempFile("unused", ""), "../marked.arrow");
      expect(lakebed(["convert", path, arrow], 120_000).status).toBe(0);
      expect(replay(arrow, "lakebed").stats).toEqual(libraryStats);
      // the same snapshot without the marks: the replay infers empty_cache from every unmap burst again
      const unmarked = tempFile("unmarked.pickle", "");
      execFileSync("python3", ["-c", "import pickle,sys; s=pickle.load(open(sys.argv[1],'rb')); del s['allocator_settings']['lakebed_empty_cache_at']; pickle.dump(s, open(sys.argv[2],'wb'))", path, unmarked]);
      expect(replay(unmarked, "lakebed").stats["num_device_alloc"]).not.toBe(stats["num_device_alloc"]);
    });
  }
  // verify checks a library snapshot against the policy it names (lakebed_policy): the driver calls
  // the library made against the emulator's segments, as memory taken and given back per request
  // (api's verify.ts takenAndGivenBack: the library writes one segment_unmap per map it cuts, and a
  // chunk move's map before its unmap)
  for (const [policy, conf] of [["caching", ""], ["expandable", ""], ["vms", ""], ["lakebed", ""], ["lakebed", "lakebed_large_page_mb:2"]]) {
    it(`${policy}${conf ? ` (${conf})` : ""}: lakebed verify matches its own segment events and final layout, and not another policy's`, () => {
      for (const seed of [1, 2]) {
        const { path } = write(policy, seed, conf);
        const r = lakebed(["verify", path], 120_000);
        expect(r.stdout + r.stderr).toContain(`: MATCH (policy ${policy})`);
        expect(r.status).toBe(0);
      }
      const { path } = write(policy, 3, conf);
      const other = lakebed(["verify", path, "--policy", policy === "caching" ? "lakebed" : "caching"], 120_000);
      expect(other.stdout).toContain("MISMATCH");
      expect(other.status).toBe(1);
    });
  }
});

describe.skipIf(skip)("the trace keeps its newest entries, as _record_memory_history(max_entries=...)", () => {
  // LAKEBED_TORCH_TRACE_MAX_ENTRIES caps the library's trace (trace_log.h); before the cap it grew
  // by 40 bytes an entry for the whole job. 8,000 operations write about 12,000 entries: past one
  // 4,096-entry block and past the 8,192 slots a cap of 5,000 rounds up to, so the ring comes round.
  type Trace = { count: number; dropped: number; actions: number[]; addrs: number[]; sizes: number[]; marks: number[]; check: string };
  for (const policy of ["caching", "lakebed"]) {
    it(`${policy}: capped at 1,000 and 5,000 entries, the uncapped run's newest entries and its empty_cache marks`, () => {
      const full = harness(["trace", policy, "3", "8000"]) as unknown as Trace;
      expect(full.check).toBe("");
      expect(full.dropped).toBe(0); // the default cap (2^21 entries) holds a whole normal recording
      expect(full.count).toBeGreaterThan(8192);
      expect(full.marks.length).toBeGreaterThan(5);
      for (const cap of [1000, 5000]) {
        const capped = harness(["trace", policy, "3", "8000"], { LAKEBED_TORCH_TRACE_MAX_ENTRIES: String(cap) }) as unknown as Trace;
        expect(capped.check).toBe("");
        expect(capped.count).toBe(cap);
        expect(capped.dropped).toBe(full.count - cap);
        const tail = (v: number[]) => v.slice(full.count - cap);
        expect(capped.actions).toEqual(tail(full.actions));
        expect(capped.addrs).toEqual(tail(full.addrs));
        expect(capped.sizes).toEqual(tail(full.sizes));
        expect(capped.marks).toEqual(full.marks.filter((m) => m >= capped.dropped).map((m) => m - capped.dropped));
      }
    });
  }
  it("0 records nothing; a value that is not a count is refused when the library opens", () => {
    const none = harness(["trace", "lakebed", "3", "2000"], { LAKEBED_TORCH_TRACE_MAX_ENTRIES: "0" }) as unknown as Trace;
    expect([none.count, none.dropped, none.marks.length, none.check]).toEqual([0, 0, 0, ""]);
    const bad = spawnSync(paths.harness, ["trace", "lakebed", "3", "10"], { encoding: "utf8", env: { ...process.env, LAKEBED_TORCH_TRACE_MAX_ENTRIES: "1e6" } });
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.stdout).error).toMatch(/LAKEBED_TORCH_TRACE_MAX_ENTRIES must be a whole number of entries, got '1e6'/);
  });
  it("caching: a capped run's snapshot says it was cut and imports as a trace that starts mid-run", async () => {
    const path = tempFile("capped.pickle", "");
    const r = spawnSync("python3", [resolve(repoRoot, "test/support/torch_snapshot.py"), "caching", "7", "3000", path], {
      encoding: "utf8",
      env: { ...process.env, PYTHONPATH: resolve(repoRoot, "python"), LAKEBED_TORCH_LIB: paths.library, LAKEBED_TORCH_TRACE_MAX_ENTRIES: "1000" },
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/the trace kept its newest entries only \(\d+ older ones dropped/);
    const [device] = (await loadTrace(path)).devices;
    expect(device.events.length).toBeLessThanOrEqual(1000);
    expect(device.events.length).toBe(1000); // the ring, whole: every kept entry goes into the snapshot
    expect(device.complete).toBe(false);
    expect(device.initialState.length).toBeGreaterThan(0);
  });
  // A wrapped snapshot is rebuilt backwards from its segments (packages/traces' initial-state.ts).
  // Before the library named each mapped range's own stream, a segment_unmap made inside another
  // stream's malloc carried that stream: undoing it left the range a segment apart from its own
  // stream's, and undoing a free_completed across the seam failed ("undoing free_completed of
  // 0x16e5ba6a00: a block for a 16982585-byte request needs 16983040 bytes, only 366080 are free
  // there", expandable and lakebed, every cap and seed). And the replay sized expandable reservations
  // from the device total it infers from the trace's maps, which a wrapped trace no longer holds: the
  // snapshot now says the total (allocator_settings' lakebed_device_total). torch_snapshot.py's last
  // allocations (GROW) are the largest of the run, so the peaks fall inside the kept entries.
  for (const policy of policies) {
    for (const [cap, seed] of [[300, 7], [1000, 11]] as const) {
      it(`${policy}: a snapshot whose trace the cap cut (${cap} entries, seed ${seed}) imports, and its replay has the library's peak`, async () => {
        const path = tempFile(`${policy}-wrapped.pickle`, "");
        const r = spawnSync("python3", [resolve(repoRoot, "test/support/torch_snapshot.py"), policy, String(seed), "3000", path, "", "8"], {
          encoding: "utf8",
          timeout: 60_000,
          env: { ...process.env, PYTHONPATH: resolve(repoRoot, "python"), LAKEBED_TORCH_LIB: paths.library, LAKEBED_TORCH_TRACE_MAX_ENTRIES: String(cap) },
        });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toMatch(/older ones dropped/);
        const stats = JSON.parse(r.stdout) as Record<string, number>;
        const [device] = (await loadTrace(path)).devices;
        expect(device.complete).toBe(false);
        expect(device.deviceTotalBytes).toBeGreaterThan(0);
        const d = replay(path, policy);
        expect(d.ooms).toBe(0);
        expect(d.peakAllocatedBytes).toBe(stats["allocated_bytes.all.peak"]);
        // vms and lakebed take a mid-run start state afresh (its live blocks alone, the cache
        // dropped: core-sim's start-state-prologue.ts), so only the rebuilt layouts reserve the same
        if (policy === "caching" || policy === "expandable") expect(d.peakReservedBytes).toBe(stats["reserved_bytes.all.peak"]);
        // and verify says why it cannot compare events where the policy starts afresh, not MISMATCH
        if (policy === "vms" || policy === "lakebed") {
          const v = lakebed(["verify", path], 120_000);
          expect(v.status).toBe(1);
          expect(v.stdout + v.stderr).toMatch(new RegExp(`cannot be verified: the trace starts mid-run .* and ${policy} allocates that start state afresh`));
        }
      });
    }
  }
  it("a device total that is not a whole number of bytes is refused, naming the key", () => {
    const path = tempFile("total.pickle", "");
    execFileSync("python3", [resolve(repoRoot, "test/support/torch_snapshot.py"), "caching", "3", "200", path], {
      env: { ...process.env, PYTHONPATH: resolve(repoRoot, "python"), LAKEBED_TORCH_LIB: paths.library },
    });
    const bad = tempFile("bad-total.pickle", "");
    execFileSync("python3", ["-c", "import pickle,sys; s=pickle.load(open(sys.argv[1],'rb')); s['allocator_settings']['lakebed_device_total']='80GB'; pickle.dump(s, open(sys.argv[2],'wb'))", path, bad]);
    const r = lakebed(["replay", bad, "--policy", "caching"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/allocator_settings lakebed_device_total "80GB" is not a positive whole number of bytes/);
  });
});

describe.skipIf(skip)("a snapshot taken while another thread allocates is of one moment", () => {
  // PyTorch allocates from more than one thread (the autograd engine's own) and a snapshot may be
  // dumped mid-step (an out-of-memory observer). python/lakebed_torch's snapshot() reads one copy the
  // library took under one acquisition of its lock (lakebed_snapshot_take); it used to read the
  // segments, the trace and the empty_cache marks through separate calls, each under the lock on its
  // own, and got pieces of different moments: segments the trace did not end in, marks past its end.
  // The harness's snapshot mode takes snapshots while a worker thread allocates and frees, and checks
  // each as lakebed verify and the importer need it: the trace, undone from its end, finds what each
  // entry made in the snapshot's segments and blocks (down to an empty allocator when nothing was
  // dropped), the blocks tile their segments, the marks lie within the trace.
  type Race = { snapshots: number; moments: number; torn: number; firstTorn: string; traceAtEnd: number; dropped: number; marksAtEnd: number; final: string; sameAsTraceCalls: boolean; check: string };
  for (const policy of policies) {
    it(`${policy}: every snapshot taken mid-run is consistent, with the whole trace and with one the cap cut`, () => {
      for (const cap of [null, 3000, 5000]) {
        const env: Record<string, string> = cap ? { LAKEBED_TORCH_TRACE_MAX_ENTRIES: String(cap) } : {};
        const r = harness(["snapshot", policy, "3", "20000", "whole"], env) as unknown as Race;
        expect({ cap, torn: r.torn, firstTorn: r.firstTorn, final: r.final, check: r.check }).toEqual({ cap, torn: 0, firstTorn: "", final: "", check: "" });
        // (a moment by the entries ever appended: a capped trace's kept count stops at the cap)
        expect(r.moments, "snapshots taken while the worker ran, at different points of its run").toBeGreaterThan(10);
        expect(r.marksAtEnd).toBeGreaterThan(0);
        // the copy's trace, dropped count and marks are those the trace calls read at rest (the
        // copy takes the ring's slots a block at a time; the cap's 3,000 entries wrap its 4,096 slots,
        // one block, and 5,000 wrap 8,192, two: a run of slots that ends at a block's end inside the ring)
        expect(r.sameAsTraceCalls).toBe(true);
        if (cap) expect([r.traceAtEnd, r.dropped > 0]).toEqual([cap, true]);
        else expect(r.dropped).toBe(0);
      }
    });
  }
  it("the check catches the pieces of different moments that separate calls read", () => {
    // each piece from a take of its own, with the module's work between them, as it read them before
    for (const policy of ["caching", "lakebed"]) {
      const r = harness(["snapshot", policy, "3", "20000", "pieces"]) as unknown as Race;
      expect(r.torn, policy).toBeGreaterThan(0);
      expect(r.firstTorn).toMatch(/does not lead to the snapshot's segments and blocks|beyond the trace's|leaves/);
      expect(r.final).toBe(""); // at rest, the pieces agree
    }
  });
});

describe.skipIf(skip)("the library parses settings as core-sim's conf.ts does", () => {
  // A PyTorch process has no Node to run conf.ts: the library carries a C++ twin (alloc_conf.cc)
  const texts = [
    "",
    "max_split_size_mb:128,roundup_power2_divisions:4",
    "expandable_segments:True,garbage_collection_threshold:0.6",
    "roundup_power2_divisions:[256:1,512:2,1024:4,>:8]",
    "max_non_split_rounding_mb:64, large_segment_size_mb:40",
    "per_process_memory_fraction:0.5,backend:native",
    "vmmDefragment:1,fragLimit:16777216,defragLevel:1,reuseLimit:4,autoGC:80,reAlloc:1",
    "lakebed_slack_permille:50,lakebed_fit_window:4,lakebed_large_page_mb:2",
    "release_lock_on_cudamalloc:True,pinned_num_register_threads:8",
    "max_split_size_mb:10",
    "expandable_segments:yes",
    "lakebed_large_page_mb:3",
    "roundup_power2_divisions:[256:3]",
    "no_such_key:1",
    "backend:cudaMallocAsync",
    "max_split_size_mb",
  ];
  it(`${texts.length} settings strings: the same numbers, and the same ones refused`, () => {
    const out = JSON.parse(
      execFileSync("python3", [resolve(repoRoot, "test/support/torch_conf.py"), ...texts], {
        encoding: "utf8",
        env: { ...process.env, PYTHONPATH: resolve(repoRoot, "python"), LAKEBED_TORCH_LIB: paths.library },
      }),
    ) as Array<{ ok: boolean; values?: number[] }>;
    texts.forEach((text, i) => {
      let expected: number[] | null = null;
      try {
        const c = parseAllocConf(text);
        const g = c.gmlake;
        expected = [c.maxSplitSizeBytes ?? -1, c.maxNonSplitRoundingBytes, c.garbageCollectionThreshold, c.expandableSegments ? 1 : 0,
          c.largeSegmentSizeBytes, c.perProcessMemoryFraction ?? 0, ...c.roundupPower2Divisions,
          g.vmmDefragment, g.fragLimitBytes, g.defragLevel, g.reuseLimit, g.autoGCGiB, g.reAlloc,
          c.lakebed.slackPermille, c.lakebed.fitWindow, c.lakebed.largePageMiB];
      } catch {
        expected = null;
      }
      expect({ text, ok: out[i].ok }).toEqual({ text, ok: expected !== null });
      if (expected) expect({ text, values: out[i].values }).toEqual({ text, values: expected });
    });
  });
});
