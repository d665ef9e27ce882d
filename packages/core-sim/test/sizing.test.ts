import { describe, expect, it } from "vitest";
import { defaultAllocConf, parseAllocConf, sizingRules } from "@lakebed/core-sim";

const MiB = 1024 * 1024;

describe("round_size (reference A3)", () => {
  const withDivisions = (n: number) => sizingRules(parseAllocConf(`roundup_power2_divisions:${n}`));
  const four = withDivisions(4);
  const eight = withDivisions(8);
  const plain = sizingRules(defaultAllocConf());
  const table: [request: number, divisions4: number, divisions8: number, plain: number][] = [
    [5_000, 5_120, 5_120, 5_120],
    [100_000, 114_688, 106_496, 100_352],
    // (the reference note's table says 1,678,336 for plain rounding; 512-byte steps give 1,677,824)
    [1_677_722, 1_835_008, 1_703_936, 1_677_824],
    [300 * MiB + 1, 320 * MiB, 320 * MiB, 300 * MiB + 512],
    [1_500 * MiB, 1_536 * MiB, 1_536 * MiB, 1_500 * MiB],
  ];
  for (const [request, d4, d8, p] of table) {
    it(`${request} bytes`, () => {
      expect(four.roundSize(request)).toBe(d4);
      expect(eight.roundSize(request)).toBe(d8);
      expect(plain.roundSize(request)).toBe(p);
    });
  }

  it("rounds below 512 bytes up to 512, and keeps powers of two", () => {
    expect(plain.roundSize(1)).toBe(512);
    expect(plain.roundSize(0)).toBe(512);
    expect(four.roundSize(64 * MiB)).toBe(64 * MiB);
  });

  it("uses 512-byte steps while the size is at most 512 x divisions (1200 with 4 divisions is 1536)", () => {
    expect(four.roundSize(1_200)).toBe(1_536);
    expect(four.roundSize(2_049)).toBe(2_560);
  });

  it("looks the divisions up by size bucket, as the list form sets them", () => {
    const rules = sizingRules(parseAllocConf("roundup_power2_divisions:[256:1,512:2,>:8]"));
    // below 256 MiB: the first entry back-fills (1 = off); 256-512 MiB: 1; 512 MiB-1 GiB: 2; above: 8
    expect(rules.roundSize(100_000)).toBe(100_352);
    expect(rules.roundSize(300 * MiB + 1)).toBe(300 * MiB + 512);
    expect(rules.roundSize(600 * MiB)).toBe(768 * MiB);
    expect(rules.roundSize(1_500 * MiB)).toBe(1_536 * MiB);
  });

  it("can move a request across the small/large threshold", () => {
    const rules = sizingRules(parseAllocConf("roundup_power2_divisions:2"));
    const rounded = rules.roundSize(800_000);
    expect(rounded).toBe(786_432 + 262_144);
    expect(rules.pool(rounded)).toBe("small");
    expect(rules.pool(rules.roundSize(MiB + 1))).toBe("large");
  });
});

describe("pool, get_allocation_size and should_split (reference A4)", () => {
  const rules = sizingRules(defaultAllocConf());
  const table: [request: number, rounded: number, pool: "small" | "large", segment: number, split: boolean][] = [
    [1, 512, "small", 2 * MiB, true],
    [512, 512, "small", 2 * MiB, true],
    [MiB, MiB, "small", 2 * MiB, true],
    [MiB + 1, 1_049_088, "large", 20 * MiB, true],
    [9.5 * MiB, 9_961_472, "large", 20 * MiB, true],
    [10 * MiB, 10 * MiB, "large", 10 * MiB, false],
    [10 * MiB + 1, 10_486_272, "large", 12 * MiB, true],
    [11 * MiB, 11 * MiB, "large", 12 * MiB, false],
    [100_000_000, 100_000_256, "large", 100_663_296, false],
  ];
  for (const [request, rounded, pool, segment, split] of table) {
    it(`${request} bytes`, () => {
      expect(rules.roundSize(request)).toBe(rounded);
      expect(rules.pool(rounded)).toBe(pool);
      expect(rules.allocationSize(rounded)).toBe(segment);
      // a fresh segment goes through the same split rule as a cached block
      expect(rules.shouldSplit(segment, rounded)).toBe(split);
    });
  }

  it("never splits an oversize request, and splits a 512-byte remainder with expandable segments", () => {
    const capped = sizingRules(parseAllocConf("max_split_size_mb:20"));
    expect(capped.shouldSplit(64 * MiB, 30 * MiB)).toBe(false);
    expect(capped.shouldSplit(20 * MiB, 5 * MiB)).toBe(true);
    const expandable = sizingRules(parseAllocConf("expandable_segments:True"));
    expect(expandable.shouldSplit(20 * MiB, 20 * MiB - 512)).toBe(true);
    expect(expandable.shouldSplit(20 * MiB, 20 * MiB - 511)).toBe(false);
  });

  it("sizes 1-10 MiB segments by large_segment_size_mb", () => {
    const rules = sizingRules(parseAllocConf("large_segment_size_mb:64"));
    expect(rules.allocationSize(2 * MiB)).toBe(64 * MiB);
    expect(rules.allocationSize(10 * MiB)).toBe(10 * MiB);
  });
});
