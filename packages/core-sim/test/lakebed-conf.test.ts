import { describe, expect, it } from "vitest";
import { parseAllocConf } from "@lakebed/core-sim";

describe("lakebed settings", () => {
  it("default to no slack and plain best fit, and parse lakebed_* keys", () => {
    expect(parseAllocConf("").lakebed).toEqual({ slackPermille: 0, fitWindow: 1 });
    expect(parseAllocConf("lakebed_slack_permille:20,lakebed_fit_window:16").lakebed).toEqual({ slackPermille: 20, fitWindow: 16 });
    expect(() => parseAllocConf("lakebed_fit_window:x")).toThrow(/lakebed_fit_window needs a whole number/);
  });
});
