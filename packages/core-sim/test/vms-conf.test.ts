import { describe, expect, it } from "vitest";
import { defaultGmlakeConf, parseAllocConf } from "@lakebed/core-sim";

/** GMLake's settings in the settings string: GMLake's names, units and master's defaults. */
describe("vms settings", () => {
  it("default to GMLake master's", () => {
    expect(parseAllocConf("").gmlake).toEqual({ vmmDefragment: 1, fragLimitBytes: 512 * 2 ** 20, defragLevel: 0, reuseLimit: 10, autoGCGiB: 1000, reAlloc: 0 });
    expect(defaultGmlakeConf()).toEqual(parseAllocConf("").gmlake);
  });

  it("take GMLake's names beside PyTorch's keys", () => {
    const conf = parseAllocConf("max_split_size_mb:64, fragLimit:33554432,defragLevel:1,reuseLimit:2.5,autoGC:80,reAlloc:1,vmmDefragment:0");
    expect(conf.maxSplitSizeBytes).toBe(64 * 2 ** 20);
    expect(conf.gmlake).toEqual({ vmmDefragment: 0, fragLimitBytes: 33554432, defragLevel: 1, reuseLimit: 2.5, autoGCGiB: 80, reAlloc: 1 });
  });

  it("reject values GMLake could not mean, naming the key", () => {
    expect(() => parseAllocConf("reuseLimit:0.5")).toThrow(/reuseLimit must be at least 1/);
    expect(() => parseAllocConf("fragLimit:32MB")).toThrow(/fragLimit needs a whole number/);
    expect(() => parseAllocConf("autoGC:-1")).toThrow(/autoGC/);
  });
});
