/**
 * Where output goes (the CLI contract): with --json, stdout carries exactly one JSON document and
 * nothing else; human output (tables) goes to stdout only without --json; progress goes to stderr.
 */
export function writeJson(document: unknown): void {
  process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
}

export function writeHuman(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function warn(text: string): void {
  process.stderr.write(`lakebed: ${text}\n`);
}
