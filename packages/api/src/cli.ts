import { createRequire } from "node:module";
import type * as Commander from "commander";
import { warn } from "./output.js";
import { POLICY_NAMES as POLICIES } from "@lakebed/core-sim/policies";
import { UsageError } from "./usage-error.js";
import { printable } from "./terminal-text.js";

export { exitOnOutputErrors } from "./output.js";

// commander is CommonJS: require() loads it in about half the time an ESM import takes (no
// translation of its exports through the ESM loader), 13 ms of every command's start here.
const { Command, CommanderError } = createRequire(import.meta.url)("commander") as typeof Commander;

// Each command's module is imported when that command runs, not before: `lakebed --help` and a
// replay of a pickle load neither the Arrow library, the HTML report nor the native addon (the
// start-up figures are in bench/results.json). The policy names are the one value the help text
// needs: core-sim's registry, whose entry module imports nothing.
const commands = {
  info: async () => (await import("./commands/info.js")).infoCommand,
  replay: async () => (await import("./commands/replay.js")).replayCommand,
  compare: async () => (await import("./commands/compare.js")).compareCommand,
  verify: async () => (await import("./commands/verify.js")).verifyCommand,
  convert: async () => (await import("./commands/convert.js")).convertCommand,
  doctor: async () => (await import("./commands/doctor.js")).doctorCommand,
  tiering: async () => (await import("./commands/tiering.js")).tieringCommand,
  colocate: async () => (await import("./commands/colocate.js")).colocateCommand,
  torch: async () => (await import("./commands/torch.js")).torchCommand,
};

/**
 * The `lakebed` command line. Every command that reports takes --json and then prints exactly one
 * JSON document on stdout. Bad input is one line on stderr and exit status 1; usage errors (commander's
 * own, and UsageErrors from checking option values) are one line and exit 2.
 */
export async function main(argv: string[]): Promise<number> {
  let status = 0;
  const run = (load: () => Promise<(...args: any[]) => Promise<number>>) => async (...args: any[]) => {
    const command = await load();
    status = await command(...args.slice(0, -1));
  };
  const program = new Command("lakebed")
    .description("Replay PyTorch GPU allocation traces through GPU memory policies.")
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(commanderErrorLine(text)) })
    // the importer's stated limits, for every command that reads a trace (a refusal names the key)
    .option("--limits <list>", "raise the importer's limits, e.g. streams:1024,devices:4096 (the README's Limits lists them)")
    .hook("preAction", async () => {
      const limits = program.opts().limits as string | undefined;
      if (limits !== undefined) (await import("./import-limits-option.js")).setImportLimits(limits);
    });

  program
    .command("info")
    .description("devices, events, time span, recorded PyTorch settings, and whether the trace is complete")
    .argument("<trace>", "a PyTorch memory snapshot (.pickle, .pickle.gz, .json) or a converted .arrow trace")
    .option("--json", "print one JSON document on stdout")
    .action(run(commands.info));

  program
    .command("replay")
    .description("replay a trace through a policy and report peak memory, device calls and OOMs")
    .argument("<trace>", "trace file")
    .option("--policy <name>", `one of ${POLICIES.join(", ")} (default: the one a lakebed_torch snapshot names, with its recorded settings; else caching, or expandable under expandable_segments; the output says which and why)`)
    .option("--conf <settings>", "PYTORCH_CUDA_ALLOC_CONF-style settings, e.g. max_split_size_mb:128,roundup_power2_divisions:4 (default: the recorded settings)")
    .option("--capacity <bytes>", "device capacity, e.g. 40GiB (default: unlimited)")
    .option("--check [level]", "check the policy's invariants: after every event what it changed, and all of them every 1,024 events and at the end; --check full: all of them after every event (slow)")
    .option("--find-min-capacity", "also search the smallest device capacity (to 2 MiB) that replays without an OOM")
    .option("--backend <name>", "sim (default: the simulator), host (memfd + mmap) or cuda (the GPU): where the policy's device calls really go")
    .option("--verify-data", "live backends: write a check pattern into every allocation and check it before the allocation is freed")
    .option("--fail-every <calls>", "live backends: fault injection, every Nth call of a kind fails, e.g. map:3,memCreate:5")
    .option("--shrink-idle <ms>", "tiering: serverless shrink (everything to the host) at idle gaps of at least this much computation time")
    .option("--shrink-at <events>", "tiering: serverless shrink right before these events, e.g. 1200,5400")
    .option("--shrink-discard <ids>", "tiering: blocks (trace block ids) a shrink drops instead of copying")
    .option("--live-shrink-at <event>", "live backends: shrink the whole process (every chunk copied to pinned host memory, released) and refill it at the same addresses before this trace event, or at 'peak'; reports the latency")
    .option("--json", "print one JSON document on stdout")
    .action(run(commands.replay));

  program
    .command("compare")
    .description("replay a trace through several policies and compare peak memory, device calls and allocator time")
    .argument("<trace>", "trace file")
    .option("--policies <list>", `comma-separated policies (default: ${POLICIES.join(",")})`)
    .option("--conf <settings>", "PYTORCH_CUDA_ALLOC_CONF-style settings for every policy (default: the recorded settings)")
    .option("--capacity <bytes>", "device capacity, e.g. 40GiB (default: unlimited)")
    .option("--find-min-capacity", "search the smallest device capacity (to 2 MiB) that replays without an OOM, per policy")
    .option("--html <file>", "also write a self-contained HTML report with charts")
    .option("--json", "print one JSON document on stdout")
    .action(run(commands.compare));

  program
    .command("tiering")
    .description("tiering's stall against device capacity, online and belady side by side, down to the smallest capacity the trace runs at (needs use events)")
    .argument("<trace>", "a trace recorded with use events (python/lakebed_record.py; NAME.access.json.gz beside it)")
    .option("--conf <settings>", "settings for every replay, e.g. tiering_host_mb:8192 (default: none)")
    .option("--points <n>", "capacities drawn between the smallest that runs and the peak (default 12)")
    .option("--html <file>", "also write a self-contained HTML report with the stall-capacity chart")
    .option("--json", "print one JSON document on stdout")
    .action(run(commands.tiering));

  program
    .command("verify")
    .description("replay with the recorded settings and compare segment events and the final layout with PyTorch's (or the library's policy's)")
    .argument("<trace>", "trace file")
    .option("--policy <name>", "the policy whose segment events to compare with (default: the one the snapshot names, lakebed_torch's; else caching, or expandable under expandable_segments)")
    .option("--capacity <bytes>", "the device capacity the trace was recorded under (set_per_process_memory_fraction x total)")
    .option("--json", "print one JSON document on stdout")
    .action(run(commands.verify));

  program
    .command("convert")
    .description("convert a snapshot to lakebed's on-disk format (an Apache Arrow IPC file, readable by pandas, polars and DuckDB)")
    .argument("<trace>", "trace file")
    .argument("<output>", "output .arrow file")
    .option("--json", "print one JSON document on stdout")
    .action(run(commands.convert));

  program
    .command("colocate")
    .description("replay several traces as tenants of one device (training and inference) under handover, static partitions and separate PyTorch processes")
    .argument("<scenario>", "a scenario file (JSON: docs/colocate.md)")
    .option("--html <file>", "also write a self-contained HTML report with charts")
    .option("--json", "print one JSON document on stdout")
    .option("--backend <name>", "sim (default: the strategies, simulated), host (memfd + mmap) or cuda: the live half instead, real processes sharing chunks and handing memory over on that driver")
    .option("--verify-data", "live: every process checks its own pattern and every shared chunk, and the shared chunks' bytes are compared across processes")
    .option("--device <n>", "cuda: the device ordinal (default 0)")
    .option("--handover-acquire <size>", "live: what inference acquires from training's pool (default 32MiB on host, 1GiB on cuda)")
    .option("--handover-iterations <n>", "live: handovers measured (default 10 on host, 30 on cuda)")
    .action(run(commands.colocate));

  program
    .command("doctor")
    .description("say which device drivers (sim, host, cuda) work on this machine, and why not")
    .option("--json", "print one JSON document on stdout")
    .action(run(commands.doctor));

  program
    .command("torch")
    .description("where the PyTorch allocator library (liblakebed_torch.so) and its Python module are, and how to enable them")
    .option("--json", "print one JSON document on stdout")
    .action(run(commands.torch));

  try {
    await program.parseAsync(argv, { from: "user" });
    return status;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof UsageError) {
      warn(error.message);
      return 2;
    }
    if (error instanceof Error) {
      warn(error.message.split("\n")[0]);
      // a TraceError's message is the whole story (compared by name: the traces package loads with a command)
      if (error.name !== "TraceError" && process.env.LAKEBED_DEBUG) process.stderr.write(`${error.stack}\n`);
      return 1;
    }
    warn(String(error));
    return 1;
  }
}

/**
 * Commander's own usage errors ("error: unknown option '--x'") quote what was typed: escaped and cut
 * like the CLI's other error lines (usage-error.ts), so a long or hostile argument stays one short
 * line. Its help texts go to stdout and are left alone.
 */
function commanderErrorLine(text: string): string {
  const line = printable(text.trimEnd());
  return `${line.length > 200 ? `${line.slice(0, 200)}... (${line.length} characters)` : line}\n`;
}
