import { printable } from "./terminal-text.js";

/**
 * Where output goes (the CLI contract): with --json, stdout carries exactly one JSON document and
 * nothing else; human output (tables) goes to stdout only without --json; progress goes to stderr.
 * Text that came from a trace is made printable (terminal-text.ts) by whoever puts it in a line;
 * warn does it for the whole line, since error lines quote files and recorded values.
 */
export function writeJson(document: unknown): void {
  process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
}

export function writeHuman(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function warn(text: string): void {
  process.stderr.write(`lakebed: ${printable(text)}\n`);
}

/** The exit status of a process killed by SIGPIPE (128 + 13), as a shell reports it. */
const EXIT_BROKEN_PIPE = 141;

/**
 * A write error on stdout ends the process at once, without Node's unhandled-'error' stack: a
 * closed pipe (`lakebed info x | head -1`: the reader chose to stop) quietly, with the status a
 * process killed by SIGPIPE has, as git and coreutils end there; anything else (a full disk) with
 * one line on stderr and status 1. Exiting runs the live replay's teardown (its 'exit' hook).
 * For the `lakebed` process only (bin/lakebed.js): the API never exits its caller's process.
 */
export function exitOnOutputErrors(): void {
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(EXIT_BROKEN_PIPE);
    process.stderr.write(`lakebed: cannot write to stdout: ${error.code ?? printable(error.message)}\n`);
    process.exit(1);
  });
  // with stderr gone too there is no one left to tell
  process.stderr.on("error", () => process.exit(1));
}
