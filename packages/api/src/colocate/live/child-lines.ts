// A child process of a live colocate run, spoken to in lines: one command a line on its stdin,
// one JSON document a line on its stdout (live-child.ts is the other end). stderr is kept for the
// error message when it fails.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The built child entry (dist/colocate-live-child.js), from the bundle or from the sources. */
export function childScript(): string {
  for (const rel of ["./colocate-live-child.js", "../../../dist/colocate-live-child.js"]) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error("dist/colocate-live-child.js is missing: build @lakebed/api first (npm run build -w packages/api)");
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

export class LineChild {
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private stderr = "";
  private done = false;

  constructor(
    readonly label: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.process = spawn(process.execPath, [childScript(), ...args], { stdio: ["pipe", "pipe", "pipe"], env });
    let partial = "";
    this.process.stdout!.on("data", (chunk: Buffer) => {
      partial += chunk.toString("utf8");
      let nl: number;
      while ((nl = partial.indexOf("\n")) >= 0) {
        this.lines.push(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
      this.wake();
    });
    this.process.stderr!.on("data", (chunk: Buffer) => (this.stderr += chunk.toString("utf8")));
    this.exited = new Promise((resolve) =>
      this.process.on("exit", (code, signal) => {
        this.done = true;
        this.wake();
        resolve({ code, signal, stderr: this.stderr });
      }),
    );
  }

  get pid(): number {
    return this.process.pid!;
  }

  send(command: string): void {
    this.process.stdin!.write(command + "\n");
  }

  /** The next document it prints; throws with its stderr if it exits first. */
  async next<T = Record<string, unknown>>(): Promise<T> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return JSON.parse(line) as T;
      if (this.done) {
        const e = await this.exited;
        throw new Error(`${this.label} ended (${e.signal ?? `exit ${e.code}`}) before answering: ${e.stderr.trim().split("\n").pop()}`);
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** send, then the answer */
  async ask<T = Record<string, unknown>>(command: string): Promise<T> {
    this.send(command);
    return this.next<T>();
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.process.kill(signal);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}
