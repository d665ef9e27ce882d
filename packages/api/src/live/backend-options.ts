// The live-replay flags of `lakebed replay`, checked before any trace is read: which backend, and
// the fault-injection spec (`--fail-every map:3,memCreate:5`: every 3rd map and 5th memCreate fail).
import { CALL_KINDS, type CallKind } from "@lakebed/native-cuda";
import type { LiveBackend } from "./live-replay.js";
import { UsageError, quoted } from "../usage-error.js";

export const BACKENDS = ["sim", "host", "cuda"] as const;
export type Backend = (typeof BACKENDS)[number];

export function parseBackend(name: string | undefined): Backend {
  if (name === undefined) return "sim";
  if (!(BACKENDS as readonly string[]).includes(name)) {
    throw new UsageError(`--backend: unknown backend ${quoted(name)} (choose one of ${BACKENDS.join(", ")})`);
  }
  return name as Backend;
}

export function isLive(backend: Backend): backend is LiveBackend {
  return backend !== "sim";
}

export function parseFailEvery(spec: string): Array<{ call: CallKind; n: number }> {
  return spec.split(",").map((item) => {
    const [call, n] = item.split(":");
    if (!(CALL_KINDS as readonly string[]).includes(call)) {
      throw new UsageError(`--fail-every: ${quoted(call)} is no driver call (one of ${CALL_KINDS.join(", ")})`);
    }
    const every = Number(n);
    if (!Number.isSafeInteger(every) || every < 1) throw new UsageError(`--fail-every: ${quoted(item)} needs a count of 1 or more (CALL:N)`);
    return { call: call as CallKind, n: every };
  });
}
