import { describe, expect, it } from "vitest";
import { MiB } from "./support/traces.js";
import { replayRandomProgram } from "./support/random-program.js";

/**
 * The lakebed policy under seeded random programs, with isValid (INV-LB-*) after every event:
 * chunk moves across arenas and streams, synchronization of waiting frees at the limit,
 * empty_cache, and its two settings.
 */
const SETTINGS: { conf: string; capacityMiB?: number }[] = [
  { conf: "" },
  { conf: "", capacityMiB: 1024 },
  { conf: "lakebed_slack_permille:50", capacityMiB: 1024 },
  { conf: "lakebed_fit_window:16" },
];

describe("lakebed: random programs keep every invariant", () => {
  for (const [i, s] of SETTINGS.entries()) {
    for (const streams of [1, 3]) {
      it(`"${s.conf}"${s.capacityMiB ? ` at ${s.capacityMiB} MiB` : ""}, ${streams} stream(s)`, () => {
        const r = replayRandomProgram("lakebed", s.conf, 9000 + 100 * i + streams, streams, s.capacityMiB);
        // every chunk backs a page: reserved is whole chunks
        expect(r.stats["reserved_bytes.all.current"] % (2 * MiB)).toBe(0);
      });
    }
  }
});
