/**
 * Where the tests' inputs come from: the real snapshots in ../shared/traces (resolved from this
 * file, so tests run from any folder), and a scratch folder per test file for what they write.
 */
import { afterAll, beforeAll } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** ../shared/traces with a trailing slash */
export const shared = fileURLToPath(new URL("../../../../shared/traces/", import.meta.url));
export const haveShared = existsSync(shared);

/** A fresh folder for the calling test file, removed after it; call at the top level. */
export function scratchFolder(prefix: string): () => string {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `lakebed-traces-${prefix}-`));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return () => dir;
}
