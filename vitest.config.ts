import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

// One vitest project per package, plus the cross-package suite in test/.
// Each runs against the built packages (npm test builds first), as users get them.
const project = (name: string, dir: string) => ({
  test: { name, include: [`${dir}/**/*.test.ts`], testTimeout: 120_000, hookTimeout: 120_000 },
});

export default defineConfig({
  test: {
    // One test file per core: the files are CPU-bound and independent (each in its own process).
    // vitest's default, one worker fewer than the cores, runs them one at a time on the 2-core CI
    // machine.
    maxWorkers: availableParallelism(),
    projects: [
      project("traces", "packages/traces/test"),
      project("core-sim", "packages/core-sim/test"),
      project("native-cuda", "packages/native-cuda/test"),
      project("api", "packages/api/test"),
      project("test", "test"),
    ],
  },
});
