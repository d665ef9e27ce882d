/**
 * Text from a trace (the allocator settings PyTorch recorded, names in the snapshot) or from the
 * command line, made safe to print on a terminal. A recorded string may hold newlines that would
 * forge output lines, or escape sequences that clear the screen or retitle the window: every
 * control character (C0, DEL, C1) and every bidirectional-override character (which reorders what
 * the eye reads) is written as a visible escape (\n, \x1b, \u202e). The HTML report escapes for
 * HTML instead (report/html-report.ts).
 */

// C0 controls, DEL, C1 controls; the bidi embeddings, overrides and isolates; the line and
// paragraph separators (which some terminals break lines at)
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with every character that could act on the terminal replaced by a visible escape. */
export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
  });
}
