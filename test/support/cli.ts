import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { repoRoot } from "./shared-traces.js";

const bin = resolve(repoRoot, "packages/api/bin/lakebed.js");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `lakebed` CLI as a user would, with a time limit so a hang fails the test. */
export function lakebed(args: string[], timeoutMs = 60_000): CliResult {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Writes `content` to a fresh temporary file named `name` and returns its path. */
export function tempFile(name: string, content: string | Uint8Array): string {
  const path = join(mkdtempSync(join(tmpdir(), "lakebed-test-")), name);
  writeFileSync(path, content);
  return path;
}

/** A minimal snapshot dictionary, as `json.dump(torch.cuda.memory._snapshot())` would write it. */
export function snapshotJson(entries: Record<string, unknown>[], segments: unknown[] = []): string {
  return JSON.stringify({
    segments,
    device_traces: [entries.map((e) => ({ stream: 0, time_us: 1, frames: [], ...e }))],
    allocator_settings: { PYTORCH_CUDA_ALLOC_CONF: "", max_split_size: -1, garbage_collection_threshold: 0, expandable_segments: false },
  });
}
