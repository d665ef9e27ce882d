import { describe, expect, it } from "vitest";
import { lakebed, snapshotJson, tempFile } from "./support/cli.js";

/**
 * The importer's stated limits through the CLI: past a limit, one line on stderr names the file, the
 * limit, the value found and the option (exit 1, nothing on stdout); `--limits` raises it (before or
 * after the command's name); a malformed `--limits` is a usage error (exit 2).
 */
const MiB = 1024 * 1024;

/** A complete trace with one segment and allocation on each of `n` streams. */
function streamsTrace(n: number): string {
  const entries: Record<string, unknown>[] = [];
  for (let s = 0; s < n; s++) {
    const addr = (s + 1) * 2 * MiB;
    for (const action of ["segment_alloc", "alloc", "free_requested", "free_completed", "segment_free"]) {
      entries.push({ action, addr, size: action.startsWith("segment") ? 2 * MiB : 512, stream: 7000 + s });
    }
  }
  return tempFile("streams.json", snapshotJson(entries));
}

describe("--limits", () => {
  const file = streamsTrace(300);

  it("a trace past the default limit is refused with one line naming the file, limit, value and option", () => {
    for (const command of ["info", "replay"]) {
      const r = lakebed([command, file, "--json"]);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(`lakebed: ${file}: device 0: 300 streams exceed the limit of 256 streams per device (raise it with --limits streams:N)\n`);
    }
  });

  it("raises a limit, placed before or after the command", () => {
    const after = lakebed(["info", file, "--json", "--limits", "streams:300"]);
    expect(after.status).toBe(0);
    expect(JSON.parse(after.stdout).devices[0].streams).toHaveLength(300);
    expect(lakebed(["--limits", "streams:300,devices:4", "replay", file, "--json"]).status).toBe(0);
  });

  it("a malformed --limits is a usage error", () => {
    for (const bad of ["stream:300", "streams:0", "streams:many", "streams"]) {
      const r = lakebed(["info", file, "--limits", bad]);
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("--limits");
    }
  });
});
