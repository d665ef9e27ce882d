import { defineConfig } from "vitest/config";

// One vitest project per package, plus the cross-package suite in test/.
// Each runs against the built packages (npm test builds first), as users get them.
const project = (name: string, dir: string) => ({
  test: { name, include: [`${dir}/**/*.test.ts`], testTimeout: 120_000, hookTimeout: 120_000 },
});

export default defineConfig({
  test: {
    projects: [
      project("traces", "packages/traces/test"),
      project("core-sim", "packages/core-sim/test"),
      project("native-cuda", "packages/native-cuda/test"),
      project("api", "packages/api/test"),
      project("test", "test"),
    ],
  },
});
