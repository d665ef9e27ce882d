import { describe, expect, it } from "vitest";
import { MiB } from "./support/traces.js";
import { replayRandomProgram } from "./support/random-program.js";

/**
 * The lakebed policy under seeded random programs, with isValid (INV-LB-*) after every event:
 * chunk moves across arenas and streams, synchronization of waiting frees at the limit,
 * empty_cache, and its settings; with the default 20 MiB large pages and with 2 MiB pages in both
 * pools (one chunk pool, chunks moving between small and large arenas).
 */
const SETTINGS: { conf: string; capacityMiB?: number }[] = [
  { conf: "" },
  { conf: "", capacityMiB: 1024 },
  { conf: "lakebed_slack_permille:50", capacityMiB: 1024 },
  { conf: "lakebed_fit_window:16" },
  { conf: "lakebed_large_page_mb:2" },
  { conf: "lakebed_large_page_mb:2", capacityMiB: 1024 },
];

describe("lakebed: random programs keep every invariant", () => {
  for (const [i, s] of SETTINGS.entries()) {
    for (const streams of [1, 3]) {
      it(`"${s.conf}"${s.capacityMiB ? ` at ${s.capacityMiB} MiB` : ""}, ${streams} stream(s)`, () => {
        const r = replayRandomProgram("lakebed", s.conf, 9000 + 100 * i + streams, streams, s.capacityMiB);
        // every chunk backs a page: reserved is whole chunks, and the large pool's are its page size
        const largePageMiB = s.conf.includes("lakebed_large_page_mb:2") ? 2 : 20;
        expect(r.stats["reserved_bytes.small_pool.current"] % (2 * MiB)).toBe(0);
        expect(r.stats["reserved_bytes.large_pool.current"] % (largePageMiB * MiB)).toBe(0);
      });
    }
  }
});
