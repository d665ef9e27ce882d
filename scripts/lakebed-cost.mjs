#!/usr/bin/env node
// The lakebed policy against expandable segments on every real trace: peak reserved over peak
// allocated for each, and lakebed's simulated allocator time over expandable segments' (the
// targets of issue 12: at most 1.02 x and at most 1.5 x on every single-stream trace). It prints
// the table docs/policies.md carries, so that the table can be regenerated after a change.
//
//   node scripts/lakebed-cost.mjs [--conf lakebed_key:v,...] [--also lakebed_key:v,...] [--only NAME,...] [--calls] [--json]
//
// Traces: ../shared/traces, test/fixtures/recorded and test/fixtures/access (*.pickle.gz), one row
// per device, each replayed with its recorded settings and, where it was recorded under a memory
// fraction, that limit as the capacity (capacity_bytes of its .stats.json). --conf adds lakebed
// settings to lakebed's replay only (to measure a setting against the defaults); --also adds a
// column of lakebed under those settings (docs/policies.md: lakebed_large_page_mb:2). --calls adds
// lakebed's driver calls by kind and its chunk moves: where its time goes. --json prints the rows.
// Needs the built packages (npx turbo run build, or npm run build -w packages/core-sim).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { readTrace } from "@lakebed/traces";

// LAKEBED_CORE_SIM: another build of core-sim's dist/ folder to measure (an experiment's module)
const coreSim = process.env.LAKEBED_CORE_SIM
  ? await import(pathToFileURL(resolve(process.env.LAKEBED_CORE_SIM, "index.js")).href)
  : await import("@lakebed/core-sim");
const { confFromSettings, parseAllocConf, policyEntry, replayDevice } = coreSim;

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const FOLDERS = [
  ["shared", resolve(root, "../shared/traces")],
  ["recorded", join(root, "test/fixtures/recorded")],
  ["access", join(root, "test/fixtures/access")],
];
const MAX_RESERVED_RATIO = 1.02;
const MAX_TIME_RATIO = 1.5;

const { values: args } = parseArgs({
  options: {
    conf: { type: "string", default: "" },
    also: { type: "string" },
    only: { type: "string" },
    calls: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help) {
  process.stdout.write(readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1, 14).map((l) => l.replace(/^\/\/ ?/, "")).join("\n") + "\n");
  process.exit(0);
}
const only = args.only ? new Set(args.only.split(",")) : null;
const lakebedSettings = (text) => (text ? parseAllocConf(text).lakebed : null);

function traces() {
  const out = [];
  for (const [folder, dir] of FOLDERS) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).filter((f) => f.endsWith(".pickle.gz")).sort()) {
      const name = f.replace(/\.pickle\.gz$/, "");
      if (only && !only.has(name)) continue;
      const statsFile = join(dir, `${name}.stats.json`);
      const meta = existsSync(statsFile) ? JSON.parse(readFileSync(statsFile, "utf8")) : {};
      out.push({ folder, name, file: join(dir, f), capacityBytes: meta.capacity_bytes ?? undefined });
    }
  }
  return out;
}

function replay(device, settings, policy, capacityBytes, lakebedConf = lakebedSettings(args.conf)) {
  const conf = { ...confFromSettings(settings), expandableSegments: policyEntry(policy).expandableSegments };
  if (policy === "lakebed" && lakebedConf) conf.lakebed = lakebedConf;
  const result = replayDevice(device, { policy, conf, capacityBytes });
  // A trace recorded mid-run starts from the live blocks and segments of its first snapshot: the
  // caching allocators adopt the recorded segments without a driver call, lakebed allocates the
  // live blocks afresh and pays for it. The time compared is what each spends after that start,
  // its whole time less a replay of the start alone (the trace with no events).
  const startSeconds = device.initialState.length > 0
    ? replayDevice({ ...device, events: noEvents(device.events) }, { policy, conf, capacityBytes }).allocatorSeconds
    : 0;
  return { ...result, startSeconds, stepSeconds: result.allocatorSeconds - startSeconds };
}

function noEvents(events) {
  const empty = { length: 0 };
  for (const [key, column] of Object.entries(events)) if (ArrayBuffer.isView(column)) empty[key] = column.subarray(0, 0);
  return empty;
}

const ratio = (r) => r.peakReservedBytes / r.peakAllocatedBytes;
const rows = [];
for (const t of traces()) {
  const trace = await readTrace(t.file);
  for (const device of trace.devices) {
    if (device.events.length === 0) continue;
    const expandable = replay(device, trace.allocatorSettings, "expandable", t.capacityBytes);
    const lakebed = replay(device, trace.allocatorSettings, "lakebed", t.capacityBytes);
    const also = args.also ? replay(device, trace.allocatorSettings, "lakebed", t.capacityBytes, lakebedSettings(args.also)) : null;
    const streams = device.streams.length;
    const row = {
      trace: trace.devices.length > 1 ? `${t.name}#${device.device}` : t.name,
      folder: t.folder,
      streams,
      peakAllocatedBytes: lakebed.peakAllocatedBytes,
      midRun: device.initialState.length > 0,
      expandable: {
        reservedRatio: ratio(expandable),
        seconds: expandable.stepSeconds,
        startSeconds: expandable.startSeconds,
        calls: expandable.driverCalls,
      },
      lakebed: {
        reservedRatio: ratio(lakebed),
        seconds: lakebed.stepSeconds,
        startSeconds: lakebed.startSeconds,
        calls: lakebed.driverCalls,
        deviceAllocs: lakebed.deviceAllocs,
        deviceFrees: lakebed.deviceFrees,
        counters: lakebed.policyCounters,
      },
      timeRatio: lakebed.stepSeconds / expandable.stepSeconds,
      ...(also ? { also: { conf: args.also, reservedRatio: ratio(also), seconds: also.stepSeconds, timeRatio: also.stepSeconds / expandable.stepSeconds } } : {}),
    };
    const overMemory = row.lakebed.reservedRatio > MAX_RESERVED_RATIO;
    const overTime = row.timeRatio > MAX_TIME_RATIO;
    row.targets = streams > 1 ? "(multi-stream)" : overMemory && overTime ? "both missed" : overMemory ? "reserved over 1.02 x" : overTime ? "time over 1.5 x" : "both met";
    rows.push(row);
    process.stderr.write(".");
  }
}
process.stderr.write("\n");

if (args.json) {
  process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
  process.exit(0);
}

const GiB = 2 ** 30;
const seconds = (s) => (s < 0.1 ? `${(s * 1000).toFixed(1)} ms` : `${s.toFixed(3)} s`);
const label = (r) => `${r.trace}${r.folder === "recorded" ? "" : ` (${r.folder})`}${r.midRun ? " *" : ""}`;
const lines = [];
const callColumns = args.calls ? " chunk moves | lakebed calls |" : "";
const alsoColumn = args.also ? ` lakebed, ${args.also} |` : "";
lines.push(`| trace | streams | peak allocated | expandable | lakebed | time / expandable's |${alsoColumn} targets |${callColumns}`);
lines.push(`|---|---:|---:|---:|---:|---:|${args.also ? "---:|" : ""}---|${args.calls ? "---:|---|" : ""}`);
for (const r of rows) {
  let line = `| ${label(r)} | ${r.streams} | ${(r.peakAllocatedBytes / GiB).toFixed(3)} GiB | ` +
    `${r.expandable.reservedRatio.toFixed(3)} x, ${seconds(r.expandable.seconds)} | ` +
    `${r.lakebed.reservedRatio.toFixed(3)} x, ${seconds(r.lakebed.seconds)} | ${r.timeRatio.toFixed(2)} |` +
    (r.also ? ` ${r.also.reservedRatio.toFixed(3)} x, ${seconds(r.also.seconds)} (${r.also.timeRatio.toFixed(1)}) |` : "") + ` ${r.targets} |`;
  if (args.calls) {
    const calls = Object.entries(r.lakebed.calls).map(([k, v]) => `${k} ${v}`).join(", ");
    line += ` ${r.lakebed.counters.chunkMoves ?? ""} | ${calls} |`;
  }
  lines.push(line);
}
const single = rows.filter((r) => r.streams === 1);
const met = single.filter((r) => r.targets === "both met").length;
const worstMemory = single.reduce((a, r) => Math.max(a, r.lakebed.reservedRatio), 0);
const worstTime = single.reduce((a, r) => Math.max(a, r.timeRatio), 0);
if (rows.some((r) => r.midRun)) {
  lines.push("");
  lines.push("\\* recorded mid-run: times after the start state (with it, expandable segments / lakebed: " +
    rows.filter((r) => r.midRun).map((r) => `${r.trace} ${seconds(r.expandable.seconds + r.expandable.startSeconds)} / ${seconds(r.lakebed.seconds + r.lakebed.startSeconds)}`).join(", ") + ").");
}
const geomean = (xs) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
lines.push("");
lines.push(`${met} of ${single.length} single-stream rows meet both targets; the largest reserved / allocated ${worstMemory.toFixed(3)}, ` +
  `the largest time ratio ${worstTime.toFixed(2)}; geometric means ${geomean(single.map((r) => r.lakebed.reservedRatio)).toFixed(4)} x and ` +
  `${geomean(single.map((r) => r.timeRatio)).toFixed(3)}; chunk moves ${single.reduce((a, r) => a + (r.lakebed.counters.chunkMoves ?? 0), 0)}.`);
process.stdout.write(lines.join("\n") + "\n");
