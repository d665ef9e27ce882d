import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, and the shared folder of real traces beside it (../shared/traces). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const sharedTraces = resolve(repoRoot, "../shared/traces");
export const haveSharedTraces = existsSync(sharedTraces);

/** The traces recorded for the project, each with the allocator's own statistics beside it. */
export interface RecordedTrace {
  name: string;
  file: string;
  stats: Record<string, number>;
  allocConf: string;
  /** the per-process limit the trace was recorded under, for traces recorded under a memory cap */
  capacityBytes?: number;
}

export function recordedTraces(): RecordedTrace[] {
  if (!haveSharedTraces) return [];
  return readdirSync(sharedTraces)
    .filter((f) => f.endsWith(".pickle.gz"))
    .sort()
    .map((f) => {
      const name = f.replace(/\.pickle\.gz$/, "");
      const meta = JSON.parse(readFileSync(join(sharedTraces, `${name}.stats.json`), "utf8"));
      return {
        name,
        file: join(sharedTraces, f),
        stats: meta.stats,
        allocConf: meta.alloc_conf,
        capacityBytes: meta.capacity_bytes,
      };
    });
}

/** Snapshots committed to public repositories by their authors (../shared/traces/public). */
export function publicTraces(): string[] {
  const dir = join(sharedTraces, "public");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".pickle"))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * Traces recorded on an H100 or H200 with other allocator settings, shipped in the repository
 * (test/fixtures/recorded, see its README). `maxEntries`: the ring buffer's size; a device trace that
 * holds that many entries filled it, and the oldest were dropped.
 * `statsByDevice`: the allocator's statistics of every device, by device index (`stats` is device
 * 0's); the runs recorded before several devices were recorded hold device 0's alone.
 */
export interface FixtureTrace extends RecordedTrace {
  maxEntries: number;
  statsByDevice: Record<string, Record<string, number>>;
}

export function fixtureTraces(): FixtureTrace[] {
  const dir = join(repoRoot, "test/fixtures/recorded");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".pickle.gz"))
    .sort()
    .map((f) => {
      const name = f.replace(/\.pickle\.gz$/, "");
      const meta = JSON.parse(readFileSync(join(dir, `${name}.stats.json`), "utf8"));
      return {
        name,
        file: join(dir, f),
        stats: meta.stats,
        allocConf: meta.alloc_conf,
        capacityBytes: meta.capacity_bytes ?? undefined,
        maxEntries: meta.max_entries,
        // A device the run never allocated on has all-zero statistics and no trace.
        statsByDevice: Object.fromEntries(
          Object.entries((meta.stats_by_device ?? { 0: meta.stats }) as Record<string, Record<string, number>>).filter(
            ([, stats]) => stats["allocation.all.allocated"] > 0,
          ),
        ),
      };
    });
}
