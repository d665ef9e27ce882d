import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { ImportLimits, Trace } from "@lakebed/traces";
import { repoRoot } from "../support/shared-traces.js";

/**
 * Runs the importer in a worker thread with a time limit and a heap limit, so that the fuzzers can
 * observe a hang or memory exhaustion as an outcome (a synchronous infinite loop would otherwise
 * stop the fuzzer, and the test runner's own time limit, with it). After a hang or a crash of the
 * worker a fresh worker takes over.
 */
export type RawOutcome =
  | { kind: "trace"; trace: Trace }
  | { kind: "error"; traceError: boolean; internal?: boolean; name: string; message: string }
  | { kind: "hang"; afterMs: number }
  | { kind: "died"; detail: string };

const WORKER_FILE = join(repoRoot, "test/fuzz/import-worker.mjs");

export interface IsolationLimits {
  /** an input that takes longer than this is a hang */
  timeoutMs: number;
  /** the worker's JavaScript heap */
  heapMb: number;
}

export const DEFAULT_LIMITS: IsolationLimits = { timeoutMs: 10_000, heapMb: 1536 };

export class IsolatedImporter {
  private worker: Worker | null = null;
  private nextId = 0;

  constructor(private readonly limits: IsolationLimits = DEFAULT_LIMITS) {}

  /**
   * `importLimits`: the importer's own stated limits to read with (its defaults where absent);
   * `windowBytes`: the pickle reader's window (ReadTraceOptions.windowBytes), small to cut the input
   * at every opcode.
   */
  import(bytes: Uint8Array, file: string, viaFile: boolean, importLimits?: Partial<ImportLimits>, windowBytes?: number): Promise<RawOutcome> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<RawOutcome>((resolve) => {
      const done = (o: RawOutcome) => {
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("error", onError);
        worker.off("exit", onExit);
        resolve(o);
      };
      const kill = () => {
        this.worker = null;
        void worker.terminate();
      };
      const timer = setTimeout(() => {
        kill();
        done({ kind: "hang", afterMs: this.limits.timeoutMs });
      }, this.limits.timeoutMs);
      const onMessage = (m: { id: number } & ({ kind: "trace"; trace: Trace } | { kind: "error"; traceError: boolean; internal?: boolean; name: string; message: string })) => {
        if (m.id !== id) return;
        done(m.kind === "trace" ? { kind: "trace", trace: m.trace } : { kind: "error", traceError: m.traceError, internal: m.internal, name: m.name, message: m.message });
      };
      const onError = (e: Error & { code?: string }) => {
        kill();
        done({ kind: "died", detail: `${e.code ?? e.name}: ${e.message}` });
      };
      const onExit = (code: number) => {
        this.worker = null;
        done({ kind: "died", detail: `the importer's worker exited with code ${code}` });
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      worker.on("exit", onExit);
      worker.postMessage({ id, bytes, file, viaFile, limits: importLimits, windowBytes });
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  private ensureWorker(): Worker {
    this.worker ??= new Worker(WORKER_FILE, {
      resourceLimits: { maxOldGenerationSizeMb: this.limits.heapMb, maxYoungGenerationSizeMb: 64 },
    });
    return this.worker;
  }
}
