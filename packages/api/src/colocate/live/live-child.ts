// The processes of a live colocate run (built as dist/colocate-live-child.js): the share registry,
// a dedup tenant, and the two sides of a handover (the inference side measuring, or taking
// commands: handover-tenant, for the crash tests). Each prints one JSON document a line on stdout
// and, where it takes commands, reads one a line on stdin (child-lines.ts is the parent's side).
// Any failure: the message on stderr, exit 1.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import type { DriverKind } from "@lakebed/native-cuda";
import { serveRegistry } from "./share-registry.js";
import { DedupTenant } from "./dedup-tenant.js";
import type { LiveDedupPlan } from "./dedup-plan.js";
import { HandoverTenant, runHandoverInference, runHandoverTraining, type HandoverOptions } from "./handover-live.js";

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

function required(args: string[], name: string): string {
  const v = flag(args, name);
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

function print(doc: unknown): void {
  process.stdout.write(JSON.stringify(doc) + "\n");
}

async function commands(handle: (command: string) => boolean | void | Promise<void>): Promise<void> {
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if ((await handle(line.trim())) === true) break;
  }
  rl.close();
}

async function dedupTenant(args: string[]): Promise<void> {
  const plan = JSON.parse(readFileSync(required(args, "plan"), "utf8")) as LiveDedupPlan;
  const index = Number(required(args, "index"));
  const tenant = new DedupTenant(plan.tenants[index], required(args, "backend") as DriverKind, 0x7e000000 + index, Number(flag(args, "device") ?? 0));
  print({ phase: "opened", pid: process.pid });
  await commands((command) => {
    if (command === "share") print({ phase: "shared", ...tenant.share(required(args, "registry")) });
    else if (command === "replay" || command === "replay-verify") return tenant.replay(command === "replay-verify").then((r) => print({ phase: "replayed", ...r }));
    else if (command === "meminfo") print({ phase: "meminfo", ...tenant.memInfo() });
    else if (command === "verify") print({ phase: "verified", ...tenant.verify() });
    else if (command === "probe") print({ phase: "probed", ...tenant.probeWrite(false) });
    else if (command === "probe-raw") print({ phase: "probed", ...tenant.probeWrite(true) });
    else if (command === "exit") {
      print({ phase: "exited", ...tenant.close() });
      return true;
    } else throw new Error(`unknown command ${JSON.stringify(command)}`);
  });
}

/** --stall-at adjust:N, reclaim:N or hold:N (the crash tests) */
function stallAt(v: string | undefined): HandoverOptions["stallAt"] {
  if (v === undefined) return undefined;
  const [op, n] = v.split(":");
  if ((op !== "adjust" && op !== "reclaim" && op !== "hold") || !Number.isInteger(Number(n)) || Number(n) < 1) throw new Error(`--stall-at: adjust:N, reclaim:N or hold:N, got ${JSON.stringify(v)}`);
  return { op, n: Number(n) };
}

/** --lock-timeout-ms MS: how long a wait for the books' lock held by a live peer may last */
function lockTimeoutMs(args: string[]): number | undefined {
  const v = flag(args, "lock-timeout-ms");
  if (v === undefined) return undefined;
  if (!(Number(v) > 0)) throw new Error(`--lock-timeout-ms: a positive number of ms, got ${JSON.stringify(v)}`);
  return Number(v);
}

function handoverOptions(args: string[]): HandoverOptions {
  return {
    backend: required(args, "backend") as DriverKind,
    device: Number(flag(args, "device") ?? 0),
    path: required(args, "path"),
    poolBytes: Number(required(args, "pool-bytes")),
    acquireBytes: Number(required(args, "acquire-bytes")),
    iterations: Number(required(args, "iterations")),
    stallAt: stallAt(flag(args, "stall-at")),
    lockTimeoutMs: lockTimeoutMs(args),
  };
}

async function handoverTenant(args: string[]): Promise<void> {
  const tenant = new HandoverTenant({ backend: required(args, "backend") as DriverKind, device: Number(flag(args, "device") ?? 0), path: required(args, "path"), lockTimeoutMs: lockTimeoutMs(args) });
  print(tenant.opened);
  await commands((line) => {
    const { answer, last } = tenant.command(line);
    print(answer);
    return last;
  });
}

async function main(): Promise<void> {
  const [role, ...args] = process.argv.slice(2);
  if (role === "registry") {
    const allow = flag(args, "allow-uid");
    const stats = serveRegistry({ path: required(args, "path"), allowUid: allow === undefined ? undefined : Number(allow), onReady: () => print({ phase: "ready", pid: process.pid }) });
    print({ phase: "stopped", stats });
  } else if (role === "dedup-tenant") {
    await dedupTenant(args);
  } else if (role === "handover-train") {
    runHandoverTraining(handoverOptions(args), print);
  } else if (role === "handover-infer") {
    print({ phase: "measured", ...runHandoverInference(handoverOptions(args)) });
  } else if (role === "handover-tenant") {
    await handoverTenant(args);
  } else {
    throw new Error(`unknown role ${JSON.stringify(role)} (registry, dedup-tenant, handover-train, handover-infer, handover-tenant)`);
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    // the message last: the parent quotes the last line (LAKEBED_DEBUG=1: the stack before it)
    if (process.env.LAKEBED_DEBUG === "1") process.stderr.write(`${e.stack}\n`);
    process.stderr.write(`${e.message.split("\n")[0]}\n`);
    process.exit(1);
  },
);
