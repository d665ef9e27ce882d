// The values of the options that several commands share (--policy, --policies, --conf,
// --capacity), checked before any trace is read. A value that does not parse is a UsageError (exit
// status 2) naming the option as the user typed it, with the value quoted and cut to a readable length.
import { isPolicyName, parseAllocConf } from "@lakebed/core-sim";
import { POLICIES, type PolicyName } from "../replay.js";
import { parseBytes } from "../units.js";
import { UsageError, quoted } from "../usage-error.js";

export function parsePolicy(name: string | undefined, option = "--policy"): PolicyName | undefined {
  if (name === undefined) return undefined;
  if (!isPolicyName(name)) throw new UsageError(`${option}: unknown policy ${quoted(name)} (choose one of ${POLICIES.join(", ")})`);
  return name;
}

/** `--policies a,b`: each name checked as --policies names it; default: every policy. */
export function parsePolicyList(list: string | undefined): PolicyName[] {
  const names = (list ?? POLICIES.join(",")).split(",").map((p) => p.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError(`--policies: ${quoted(list ?? "")} names no policy (choose from ${POLICIES.join(", ")})`);
  return names.map((p) => parsePolicy(p, "--policies")!);
}

export function parseCapacity(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseBytes(text, "--capacity");
}

/** Checks a --conf string as the replay will parse it; returns it unchanged. */
export function parseConf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  try {
    parseAllocConf(text);
  } catch (error) {
    // core-sim's message quotes the whole string first; the rest says what is wrong with it
    const message = error instanceof Error ? error.message : String(error);
    const prefix = `allocator settings "${text}": `;
    const detail = message.startsWith(prefix) ? message.slice(prefix.length) : message;
    throw new UsageError(`--conf ${quoted(text)}: ${detail.length > 200 ? `${detail.slice(0, 200)}...` : detail}`);
  }
  return text;
}
