import { defineConfig } from "tsup";

export default defineConfig({
  // policies: the policy registry alone (it imports nothing), for the CLI's help text
  entry: { index: "src/index.ts", policies: "src/policy-registry.ts" },
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
});
