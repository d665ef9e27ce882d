// "The native backend never leaks": memory a driver made is gone when its owner goes, however it
// goes: SIGKILL (the kernel frees memfds and mappings with the process), a normal exit or
// process.exit (the loader's process 'exit' handler), the end or termination of a worker thread
// (the worker's env cleanup hook), or garbage collection of an open driver (its finalizer).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";

import { openDriver } from "@lakebed/native-cuda";

import { holdersAnywhere, memfdMappingsOf, memfdsOf } from "./proc-scan.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

function shmEntries(): string[] {
  return existsSync("/dev/shm") ? readdirSync("/dev/shm").filter((n) => n.includes("lakebed")) : [];
}

describe("nothing outlives its owner", () => {
  it("a SIGKILLed child leaves no memfd, mapping or file behind", async () => {
    const parent = openDriver("host");
    const G = parent.granularity();
    parent.memCreate(G);
    const parentBefore = parent.counters();
    const shmBefore = shmEntries();

    const child = spawn(process.execPath, [join(fixtures, "hold-memory.mjs"), "wait"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (chunk) => {
        out += chunk;
        if (out.includes("\n")) resolve(out.trim());
      });
      child.on("exit", (code) => reject(new Error(`child exited early (${code})`)));
    });
    const [word, pidText, bad] = line.split(" ");
    expect(word).toBe("ready");
    expect(bad).toBe("0");
    const pid = Number(pidText);
    const needle = `lakebed:${pid}:`;
    // the child really holds its chunks: 8 memfds, 8 memfd mappings
    expect(memfdsOf(pid, needle)).toHaveLength(8);
    expect(memfdMappingsOf(pid, needle).length).toBeGreaterThanOrEqual(8);

    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");

    // no process on the machine holds or maps any of the child's memory, and no file was left
    expect(existsSync(`/proc/${pid}`) && memfdsOf(pid, needle).length > 0).toBe(false);
    expect(holdersAnywhere(needle)).toEqual([]);
    expect(shmEntries()).toEqual(shmBefore);
    // the parent's own driver is untouched
    expect(parent.counters()).toEqual(parentBefore);
    parent.teardown();
  });

  for (const mode of ["return", "exit"] as const) {
    it(`the exit cleanup hook tears down an open driver (${mode === "exit" ? "process.exit" : "normal end"})`, () => {
      const r = spawnSync(process.execPath, [join(fixtures, "hold-memory.mjs"), mode], {
        env: { ...process.env, LAKEBED_NATIVE_DEBUG: "1" },
        encoding: "utf8",
      });
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^ready \d+ 0/);
      expect(r.stderr).toContain(
        "lakebed-native: exit cleanup of host driver: unmapped 8, freed 1 reservations, released 8 handles, freed 1 mallocs, 0 errors",
      );
    });
  }

  for (const mode of ["end", "stay"] as const) {
    it(`a worker thread's drivers are torn down when the worker ${mode === "end" ? "ends" : "is terminated"}`, async () => {
      const before = memfdsOf("self", "lakebed:");
      const worker = new Worker(join(fixtures, "worker-holds-memory.mjs"), { workerData: mode });
      const exited = new Promise((resolve) => worker.once("exit", resolve));
      const report = await new Promise<{ memfds: string[]; counters: { liveHandles: number } }>((resolve, reject) => {
        worker.once("message", resolve);
        worker.once("error", reject);
      });
      if (mode === "stay") await worker.terminate();
      await exited;
      expect(report.counters.liveHandles).toBe(4);
      const workerOwn = report.memfds.filter((m) => !before.includes(m));
      expect(workerOwn).toHaveLength(4);
      // same process: its memfds and mappings must be gone from it now
      expect(memfdsOf("self", "lakebed:").filter((m) => workerOwn.includes(m))).toEqual([]);
      const label = workerOwn[0].replace(/^\/memfd:/, "").replace(/ \(deleted\)$/, "");
      expect(memfdMappingsOf("self", label)).toEqual([]);
    });
  }

  it("a driver collected as garbage releases what it held", () => {
    const r = spawnSync(process.execPath, ["--expose-gc", join(fixtures, "gc-drops-driver.mjs")], {
      env: { ...process.env, LAKEBED_NATIVE_DEBUG: "1" },
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ before: 2, after: 0 });
    expect(r.stderr).toContain(
      "lakebed-native: garbage collection of host driver: unmapped 2, freed 1 reservations, released 2 handles, freed 0 mallocs, 0 errors",
    );
  });
});
