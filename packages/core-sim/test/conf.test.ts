import { describe, expect, it } from "vitest";
import { confFromSettings, defaultAllocConf, parseAllocConf } from "@lakebed/core-sim";

const MiB = 1024 * 1024;

describe("parseAllocConf", () => {
  it("gives PyTorch's defaults for an empty string", () => {
    expect(parseAllocConf("")).toEqual(defaultAllocConf());
    expect(defaultAllocConf()).toMatchObject({
      maxSplitSizeBytes: null,
      maxNonSplitRoundingBytes: 20 * MiB,
      garbageCollectionThreshold: 0,
      expandableSegments: false,
      largeSegmentSizeBytes: 20 * MiB,
    });
  });

  it("reads every key PyTorch's names give", () => {
    const conf = parseAllocConf(
      "max_split_size_mb:128, max_non_split_rounding_mb:64,garbage_collection_threshold:0.6, expandable_segments:True,roundup_power2_divisions:4,large_segment_size_mb:32",
    );
    expect(conf.maxSplitSizeBytes).toBe(128 * MiB);
    expect(conf.maxNonSplitRoundingBytes).toBe(64 * MiB);
    expect(conf.garbageCollectionThreshold).toBe(0.6);
    expect(conf.expandableSegments).toBe(true);
    expect(conf.roundupPower2Divisions).toEqual(new Array(16).fill(4));
    expect(conf.largeSegmentSizeBytes).toBe(32 * MiB);
  });

  it("reads the list form of roundup_power2_divisions", () => {
    const conf = parseAllocConf("roundup_power2_divisions:[256:1,512:2,1024:4,>:8]");
    expect(conf.roundupPower2Divisions).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 8, 8, 8, 8]);
    expect(parseAllocConf("roundup_power2_divisions:[1:4, >:0]").roundupPower2Divisions).toEqual([4, ...new Array(15).fill(0)]);
  });

  it("accepts settings that change nothing an emulation sees", () => {
    expect(() => parseAllocConf("release_lock_on_cudamalloc:True,pinned_num_register_threads:8,backend:native")).not.toThrow();
  });

  const bad: [string, RegExp][] = [
    ["foo:1", /unknown setting 'foo'/],
    ["max_split_size_mb:10", /at least 20/],
    ["max_split_size_mb:lots", /whole number/],
    ["max_split_size_mb", /expected ':'/],
    ["garbage_collection_threshold:1.5", /between 0 and 1/],
    ["garbage_collection_threshold:0", /between 0 and 1/],
    ["roundup_power2_divisions:3", /power of 2/],
    ["roundup_power2_divisions:[300:2]", /powers of 2/],
    ["roundup_power2_divisions:[256:2", /missing '\]'/],
    ["expandable_segments:yes", /True or False/],
    ["max_non_split_rounding_mb:5", /at least 20/],
    ["large_segment_size_mb:10", /more than 10/],
    ["backend:cudaMallocAsync", /does not emulate/],
    ["expandable_segments:True max_split_size_mb:64", /True or False|expected ','/],
  ];
  for (const [text, message] of bad) {
    it(`rejects "${text}" with one line`, () => {
      let error: Error | undefined;
      try {
        parseAllocConf(text);
      } catch (e) {
        error = e as Error;
      }
      expect(error).toBeInstanceOf(Error);
      expect(error!.message).toMatch(message);
      expect(error!.message).not.toContain("\n");
      expect(error!.message).toContain(text.split(":")[0]);
    });
  }
});

describe("confFromSettings", () => {
  it("gives defaults when the trace recorded no settings", () => {
    expect(confFromSettings(null)).toEqual(defaultAllocConf());
  });

  it("takes the recorded fields, and the keys only the settings string carries", () => {
    const conf = confFromSettings({
      conf: "expandable_segments:True,max_non_split_rounding_mb:40",
      maxSplitSize: 256 * MiB,
      garbageCollectionThreshold: 0.8,
      expandableSegments: true,
      roundupPower2Divisions: [2, ...new Array(15).fill(0)],
      raw: {},
    });
    expect(conf.maxSplitSizeBytes).toBe(256 * MiB);
    expect(conf.maxNonSplitRoundingBytes).toBe(40 * MiB);
    expect(conf.garbageCollectionThreshold).toBe(0.8);
    expect(conf.expandableSegments).toBe(true);
    expect(conf.roundupPower2Divisions[0]).toBe(2);
  });

  it("reads max_split_size -1 as unlimited", () => {
    const conf = confFromSettings({ conf: "", maxSplitSize: -1, garbageCollectionThreshold: 0, expandableSegments: false, roundupPower2Divisions: new Array(16).fill(0), raw: {} });
    expect(conf.maxSplitSizeBytes).toBeNull();
  });
});
