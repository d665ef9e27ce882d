import { defineConfig } from "tsup";

export default defineConfig({
  // colocate-live-child: the processes of a live colocate run (src/colocate/live/live-child.ts)
  entry: { index: "src/index.ts", cli: "src/cli.ts", "colocate-live-child": "src/colocate/live/live-child.ts" },
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
});
