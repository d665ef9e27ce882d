import { describe, expect, it } from "vitest";
import { parseAllocConf } from "@lakebed/core-sim";

describe("lakebed settings", () => {
  it("default to no slack, a fit window of 4 and 20 MiB large pages, and parse lakebed_* keys", () => {
    expect(parseAllocConf("").lakebed).toEqual({ slackPermille: 0, fitWindow: 4, largePageMiB: 20 });
    expect(parseAllocConf("lakebed_slack_permille:20,lakebed_fit_window:16,lakebed_large_page_mb:2").lakebed).toEqual({
      slackPermille: 20,
      fitWindow: 16,
      largePageMiB: 2,
    });
    expect(() => parseAllocConf("lakebed_fit_window:x")).toThrow(/lakebed_fit_window needs a whole number/);
  });

  it("refuse a large page that is not a whole number of 2 MiB chunks", () => {
    expect(() => parseAllocConf("lakebed_large_page_mb:3")).toThrow(/lakebed_large_page_mb must be an even number of MiB/);
    expect(() => parseAllocConf("lakebed_large_page_mb:0")).toThrow(/lakebed_large_page_mb must be an even number of MiB/);
  });
});
