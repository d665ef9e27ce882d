import { createRequire } from "node:module";
import type TableType from "cli-table3";
import { printable } from "./terminal-text.js";

/**
 * Human tables for the terminal. Numbers are right-aligned so that columns of sizes can be read
 * down; the JSON output carries exact bytes, tables carry readable units.
 */
export function renderTable(head: string[], rows: (string | number)[][]): string {
  // required here, not imported: --json output never draws a table and need not load it
  const Table = createRequire(import.meta.url)("cli-table3") as typeof TableType;
  const table = new Table({
    head,
    style: { head: [], border: [], compact: true },
    colAligns: head.map((_, i) => (i === 0 ? "left" : "right")),
  });
  // cells may hold recorded text: made printable, so a newline in one cannot forge a row
  for (const row of rows) table.push(row.map((cell) => printable(String(cell))));
  return table.toString();
}
