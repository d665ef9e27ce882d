#!/usr/bin/env node
// The `lakebed` command: a thin launcher for the built CLI in dist/.
import { exitOnOutputErrors, main } from "../dist/cli.js";

exitOnOutputErrors();
main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
  },
  (error) => {
    process.stderr.write(`lakebed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
