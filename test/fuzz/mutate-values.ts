import { tuple, type PickleTuple } from "./pickle-writer.js";
import type { Rng } from "../support/random.js";

/**
 * Mutations of a snapshot dictionary before it is written (as a pickle or as JSON): they keep the
 * file well-formed at the byte level so the importer's checks of meaning are reached: a missing key,
 * a value of the wrong type, a number past 2^53, a negative size, an unknown action, a duplicated or
 * reordered trace entry, a list amplified a thousand times, deep nesting.
 */
const ACTIONS = ["alloc", "free_requested", "free_completed", "segment_alloc", "segment_free", "segment_map", "segment_unmap", "oom", "snapshot", "user_defined", "annotate", "bogus", ""];
const STATES = ["active_allocated", "active_pending_free", "active_awaiting_free", "inactive", "weird"];
const KEYS = ["action", "addr", "size", "stream", "time_us", "frames", "device_free", "address", "total_size", "blocks", "state", "requested_size", "segment_type", "is_expandable", "device", "segments", "device_traces", "allocator_settings", "history", "real_size"];

function interesting(rng: Rng): unknown {
  switch (rng.below(6)) {
    case 0:
      return rng.pick<unknown>([null, true, false, 0, -1, 1, -512, 511, 512, 513, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 1.5, -0, 1e308, 2 ** 47]);
    case 1:
      return rng.pick<unknown>([2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n, -(2n ** 63n), 10n ** 30n]);
    case 2:
      return rng.pick<unknown>([NaN, Infinity, -Infinity]);
    case 3:
      return rng.pick<unknown>([...ACTIONS, ...STATES, "small", "large", "\u0000", "é", "x".repeat(rng.skewed(100_000)), "True", "None"]);
    case 4:
      return rng.pick<unknown>([[], {}, tuple([]), tuple([0, 0]), [null], { "": null }, nested(rng.range(1, 2000))]);
    default:
      return rng.range(-(2 ** 20), 2 ** 40);
  }
}

/** nodes in a value, counting at most up to `cap` */
function nodeCount(v: unknown, cap: number): number {
  let count = 0;
  const stack = [v];
  while (stack.length > 0 && count < cap) {
    const x = stack.pop();
    count++;
    const children = Array.isArray(x) ? x : isTupleValue(x) ? x.items : x !== null && typeof x === "object" && !(x instanceof Uint8Array) ? Object.values(x) : [];
    for (let i = 0; i < children.length && stack.length < cap; i++) stack.push(children[i]);
  }
  return Math.max(1, count);
}

function nested(depth: number): unknown {
  let v: unknown = [];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

const isTupleValue = (v: unknown): v is PickleTuple => typeof v === "object" && v !== null && Object.getOwnPropertySymbols(v).length > 0;

/** A copy deep enough to mutate without touching the seed (containers copied, scalars shared). */
export function cloneValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneValue);
  if (isTupleValue(v)) return tuple(v.items.map(cloneValue));
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = cloneValue(x);
    return out;
  }
  return v;
}

type Container = unknown[] | Record<string, unknown>;
const isContainer = (v: unknown): v is Container => v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !isTupleValue(v);

/** a random container, reached by walking down from the root */
function pickContainer(root: Container, rng: Rng): Container {
  let c = root;
  for (let depth = 0; depth < 12; depth++) {
    const children = (Array.isArray(c) ? c : Object.values(c)).filter(isContainer);
    if (children.length === 0 || rng.chance(0.2)) break;
    c = rng.pick(children);
  }
  return c;
}

/** Applies 1 to 4 mutations to a clone of `value` and returns it. */
export function mutateValue(value: unknown, rng: Rng): unknown {
  const root = cloneValue(value);
  if (!isContainer(root)) return interesting(rng);
  const rounds = rng.range(1, 4);
  for (let r = 0; r < rounds; r++) mutateContainer(pickContainer(root, rng), rng);
  return root;
}

function mutateContainer(c: Container, rng: Rng): void {
  if (Array.isArray(c)) {
    const n = c.length;
    switch (rng.below(7)) {
      case 0:
        if (n > 0) c.splice(rng.below(n), rng.range(1, Math.max(1, n >> 1)));
        return;
      case 1:
        if (n > 0) c.splice(rng.below(n), 0, cloneValue(c[rng.below(n)]));
        return;
      case 2:
        if (n > 1) {
          const i = rng.below(n);
          const j = rng.below(n);
          [c[i], c[j]] = [c[j], c[i]];
        }
        return;
      case 3:
        c.splice(rng.below(n + 1), 0, interesting(rng));
        return;
      case 4:
        if (n > 0) c[rng.below(n)] = interesting(rng);
        return;
      case 5:
        if (n > 0) {
          // amplify: many copies of one item (shared, as a pickle memo would make them)
          const item = c[rng.below(n)];
          const copies = Math.min(rng.skewed(20_000), Math.floor(200_000 / nodeCount(item, 200_000)));
          for (let k = 0; k < copies; k++) c.push(item);
        }
        return;
      default:
        c.reverse();
        return;
    }
  }
  const keys = Object.keys(c);
  switch (rng.below(5)) {
    case 0:
      if (keys.length > 0) delete c[rng.pick(keys)];
      return;
    case 1:
      if (keys.length > 0) c[rng.pick(keys)] = interesting(rng);
      return;
    case 2:
      c[rng.pick(KEYS)] = interesting(rng);
      return;
    case 3:
      if ("action" in c) c.action = rng.pick(ACTIONS);
      else if ("state" in c) c.state = rng.pick(STATES);
      else if (keys.length > 0) c[rng.pick(keys)] = rng.pick(ACTIONS);
      return;
    default:
      if (keys.length > 0) {
        // swap the values of two keys (a size where an address was, a list where a number was)
        const a = rng.pick(keys);
        const b = rng.pick(keys);
        [c[a], c[b]] = [c[b], c[a]];
      }
      return;
  }
}

/**
 * JSON text for a value, as Python's json.dump writes it: tuples as arrays; integers of any size as
 * digits (json.dump writes Python ints exactly); NaN and Infinity as Python writes them.
 */
export function toJsonText(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "NaN";
    if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
    return Number.isInteger(v) && !Object.is(v, -0) ? BigInt(v).toString() : String(v);
  }
  if (typeof v === "string") return JSON.stringify(v);
  if (v instanceof Uint8Array) return JSON.stringify(Array.from(v));
  if (isTupleValue(v)) return `[${v.items.map(toJsonText).join(", ")}]`;
  if (Array.isArray(v)) return `[${v.map(toJsonText).join(", ")}]`;
  return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${JSON.stringify(k)}: ${toJsonText(x)}`).join(", ")}}`;
}
