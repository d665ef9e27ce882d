#!/usr/bin/env node
// Long campaigns of the property harness and the importer fuzzers (docs/harness.md). `npm test` runs
// a quick pass of both; this runs them for a given number of runs and a time budget, prints progress
// on stderr, and merges what it found into bench/campaign/summary.json and summary.md (committed).
//
//   npm run campaign -- --policy caching --minutes 10 [--runs N] [--seed S]
//   npm run campaign -- --fuzz pickle,json,arrow --inputs 100000 [--minutes M] [--seed S]
//
// --policy takes the policies of core-sim's registry (a comma list, or "all"; each policy runs in turn
// with its own budget, under every setting test/property/policy-suites.ts lists for it). Failing
// programs are written as trace files under bench/campaign/failures/. The exit status is 1 when
// anything failed.
//
// The harness is TypeScript; this script bundles the two campaign modules with esbuild (packages
// stay external) into node_modules/.campaign/, two levels under the repository root as the test
// files sit, so that their repository-relative paths hold.
import { build } from "esbuild";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { POLICY_NAMES } from "@lakebed/core-sim/policies";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "bench/campaign");
const POLICIES = [...POLICY_NAMES];
const IMPORTERS = ["pickle", "json", "arrow"];

const { values: args } = parseArgs({
  options: {
    policy: { type: "string" },
    fuzz: { type: "string" },
    runs: { type: "string" },
    inputs: { type: "string" },
    minutes: { type: "string" },
    seed: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
const usage = () => {
  process.stderr.write(readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1, 13).map((l) => l.replace(/^\/\/ ?/, "")).join("\n") + "\n");
  process.stderr.write(`Policies: ${POLICIES.join(", ")}. Importers: ${IMPORTERS.join(", ")}.\n`);
};
if (args.help || (!args.policy && !args.fuzz)) {
  usage();
  process.exit(args.help ? 0 : 2);
}
const number = (name, text, fallback) => {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!(v > 0)) {
    process.stderr.write(`campaign: --${name} must be a positive number, got '${text}'\n`);
    process.exit(2);
  }
  return v;
};
const list = (name, text, known) => {
  const items = text === "all" ? known : text.split(",");
  for (const i of items) {
    if (!known.includes(i)) {
      process.stderr.write(`campaign: --${name} takes ${known.join(", ")} or all, got '${i}'\n`);
      process.exit(2);
    }
  }
  return items;
};
const seed = Math.floor(number("seed", args.seed, Date.now() % 1_000_000_000));
const minutes = number("minutes", args.minutes, args.policy ? 10 : Infinity);
// the lists are checked before the harness is bundled, so that a wrong name costs nothing
const policies = args.policy ? list("policy", args.policy, POLICIES) : [];
const importers = args.fuzz ? list("fuzz", args.fuzz, IMPORTERS) : [];

const harness = await bundleHarness();
const summaryFile = join(outDir, "summary.json");
const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}, Node ${process.versions.node}`;
let failed = false;

if (args.policy) {
  const runs = number("runs", args.runs, Infinity);
  for (const name of policies) {
    const variants = harness.POLICY_SUITES.filter((s) => s.policy === name).map((s) => harness.suitePolicy(s));
    const started = new Date();
    const deadlineMs = Date.now() + minutes * 60_000;
    process.stderr.write(`campaign: ${name} (${variants.map((v) => v.name).join(", ")}), seed ${seed}, ${minutes} min, ${runs} runs at most\n`);
    const r = harness.runPolicyCampaign(variants, {
      seed,
      runs,
      deadlineMs,
      runsPerRound: 100,
      failureDir: join(outDir, "failures"),
      onRound: (round, totals) => {
        const left = Math.max(0, (deadlineMs - Date.now()) / 1000).toFixed(0);
        process.stderr.write(`  ${name}: ${totals.runs} runs in ${totals.seconds.toFixed(0)} s (${round.policy} ${round.property} seed ${round.seed}${round.failure ? ": FAILED" : ""}), ${left} s left\n`);
        if (round.failure) process.stderr.write(`${round.failure}\n`);
      },
    });
    failed ||= r.failures.length > 0;
    record("policies", name, {
      started: started.toISOString(),
      seconds: Math.round(r.seconds),
      seeds: [r.firstSeed, r.lastSeed],
      runs: r.runs,
      runsByProperty: r.runsByProperty,
      settings: variants.map((v) => v.name),
      failures: r.failures.map((f) => ({ ...f, traceFile: relative(root, f.traceFile), report: f.report.replaceAll(`${root}/`, "") })),
      machine,
    });
  }
}

if (args.fuzz) {
  const inputs = number("inputs", args.inputs, 100_000);
  process.stderr.write(`campaign: building the fuzz corpus from every shared trace\n`);
  const corpus = await harness.buildCorpus("full");
  for (const importer of importers) {
    const started = new Date();
    const t0 = Date.now();
    const deadlineMs = minutes === Infinity ? undefined : Date.now() + minutes * 60_000;
    let last = 0;
    process.stderr.write(`campaign: fuzzing the ${importer} importer, seed ${seed}, ${inputs} inputs\n`);
    const stats = await harness.fuzzImporter(importer, corpus, {
      seed,
      inputs,
      dir: join(tmpdir(), `lakebed-campaign-${process.pid}`, importer),
      failureDir: join(outDir, "failures"),
      deadlineMs,
      onInput: (k) => {
        if (Date.now() - last < 10_000) return;
        last = Date.now();
        process.stderr.write(`  ${importer}: ${k + 1} inputs in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
      },
    });
    failed ||= stats.failures.length > 0;
    record("importers", importer, {
      started: started.toISOString(),
      seconds: Math.round((Date.now() - t0) / 1000),
      seed,
      inputs: stats.inputs,
      accepted: stats.accepted,
      rejected: stats.rejected,
      corpus: { pickles: corpus.pickles.length, jsons: corpus.jsons.length, arrows: corpus.arrows.length, dicts: corpus.dicts.length },
      failures: stats.failures.map((f) => ({ ...f, savedAs: relative(root, f.savedAs) })),
      classes: Object.fromEntries([...stats.classes.entries()].sort()),
      rejectionKinds: [...stats.messages.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([message, count]) => ({ message, count })),
      machine,
    });
    process.stderr.write(`  ${importer}: ${stats.inputs} inputs, ${stats.accepted} accepted, ${stats.rejected} rejected, ${stats.failures.length} failures\n`);
  }
}
process.exit(failed ? 1 : 0);

async function bundleHarness() {
  const dir = join(root, "node_modules/.campaign");
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, "harness.mjs");
  await build({
    stdin: {
      contents: [
        `export { runPolicyCampaign } from "./test/property/campaign.ts";`,
        `export { POLICY_SUITES, suitePolicy } from "./test/property/policy-suites.ts";`,
        `export { buildCorpus } from "./test/fuzz/corpus.ts";`,
        `export { fuzzImporter } from "./test/fuzz/importer-oracle.ts";`,
      ].join("\n"),
      resolveDir: root,
      loader: "ts",
    },
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    logLevel: "warning",
  });
  return import(pathToFileURL(outfile).href);
}

/** Sets one entry of the summary, read afresh (another campaign may have written it meanwhile). */
function record(kind, name, entry) {
  mkdirSync(outDir, { recursive: true });
  const s = existsSync(summaryFile) ? JSON.parse(readFileSync(summaryFile, "utf8")) : { policies: {}, importers: {} };
  s[kind][name] = entry;
  writeFileSync(summaryFile, JSON.stringify(s, null, 2) + "\n");
  writeFileSync(join(outDir, "summary.md"), summaryMarkdown(s));
}

function summaryMarkdown(s) {
  const lines = [
    "# Harness campaigns",
    "",
    "Written by `scripts/campaign.mjs` (`npm run campaign`); docs/harness.md says how to run one. Each",
    "row is the latest campaign of that policy or importer; failing inputs and programs are under",
    "`bench/campaign/failures/`.",
    "",
    "## Policies (model-based properties: commands and workloads)",
    "",
    "| policy | settings | minutes | runs (commands + workloads) | seeds | failures | started | machine |",
    "|---|---|---:|---:|---|---:|---|---|",
  ];
  for (const [name, p] of Object.entries(s.policies)) {
    lines.push(`| ${name} | ${p.settings.map((x) => `\`${x}\``).join(", ")} | ${(p.seconds / 60).toFixed(1)} | ${p.runs} (${p.runsByProperty.commands} + ${p.runsByProperty.workloads}) | ${p.seeds[0]}–${p.seeds[1]} | ${p.failures.length} | ${p.started} | ${p.machine} |`);
  }
  for (const [, p] of Object.entries(s.policies)) {
    for (const f of p.failures) lines.push("", "```", f.report, "```");
  }
  lines.push("", "## Importers (fuzzing)", "", "Every other input is read in small windows (1 to 4,096 bytes, or a 256th of the input where that is more; a snapshot pickle is read as a stream, cut anywhere; test/fuzz/importer-oracle.ts), the others in the default window.", "", "| importer | inputs | accepted | rejected (clear TraceError) | failures | seed | minutes | started |", "|---|---:|---:|---:|---:|---|---:|---|");
  for (const [name, f] of Object.entries(s.importers)) {
    lines.push(`| ${name} | ${f.inputs} | ${f.accepted} | ${f.rejected} | ${f.failures.length} | ${f.seed} | ${(f.seconds / 60).toFixed(1)} | ${f.started} |`);
  }
  for (const [name, f] of Object.entries(s.importers)) {
    if (f.failures.length > 0) lines.push("", `${name} failures:`, ...f.failures.slice(0, 20).map((x) => `- input ${x.index} (${x.recipe}): ${x.detail} (\`${x.savedAs}\`)`));
    if (f.classes !== undefined && Object.keys(f.classes).length > 0) {
      lines.push("", `${name}, inputs shaped against the importer's stated limits (test/fuzz/${name === "arrow" ? "arrow-hostile-shapes.ts" : "hostile-shapes.ts"}), accepted / refused / failures:`);
      lines.push(...Object.entries(f.classes).map(([c, n]) => `- ${c}: ${n.inputs} (${n.accepted} / ${n.rejected} / ${n.failures})`));
    }
    lines.push("", `${name}, most common rejections:`, ...f.rejectionKinds.slice(0, 6).map((r) => `- ${r.count} × \`${r.message}\``));
  }
  return lines.join("\n") + "\n";
}
