import { createRequire } from "node:module";
import type * as Arrow from "apache-arrow";
import type { ImportLimits } from "@lakebed/traces";
import type { Rng } from "../support/random.js";

/**
 * lakebed Arrow traces made hostile the ways the stated limits (import-limits.ts, arrow-limits.ts)
 * and the framing walk (arrow-framing.ts) are there for, each drawn on both sides of its limit from
 * a valid seed file of the corpus:
 *
 *   arrow-columns      extra fields in the schema, against `columns`
 *   arrow-dictionary   an action dictionary of many entries, against `dictionaryEntries`
 *   arrow-lengths      one declared length or offset (a block's metadata or body, a batch's rows, a
 *                      column's values or nulls, a buffer's offset or bytes, the footer's length) set
 *                      to a huge, negative or slightly-too-large value
 *   arrow-body         a message body cut short: the file ends inside it, or what followed it moves up
 *   arrow-devices, arrow-streams, arrow-segments, arrow-depth
 *                      the lakebed.trace metadata grown past the snapshot limits (lowered where the
 *                      default is too large to reach cheaply), or nested deep
 *
 * The recipe starts with the class name, which the campaign summary counts.
 */
export const ARROW_HOSTILE_CLASSES = ["arrow-columns", "arrow-dictionary", "arrow-lengths", "arrow-body", "arrow-devices", "arrow-streams", "arrow-segments", "arrow-depth"] as const;

export interface ArrowHostileShape {
  bytes: Uint8Array;
  recipe: string;
  limits?: Partial<ImportLimits>;
}

const A = createRequire(import.meta.url)("apache-arrow") as typeof Arrow;
/**
 * A device of the metadata without events or state (a seed may have none of its own): a new object
 * each time, since the shapes push into its lists and an input must be a function of (seed, index)
 * alone (a shared one grew by every input, to 11 MB of metadata by the 36,000th).
 */
const emptyDevice = (device: number) => ({ device, events: 0, streams: [] as string[], initialState: [], finalState: [], complete: true, initialLiveBlocks: 0, privatePools: [] });
const ACTION_NAMES = ["alloc", "free_requested", "free_completed", "segment_alloc", "segment_free", "segment_map", "segment_unmap", "oom", "snapshot", "other"];

export function arrowHostileShape(seed: Uint8Array, seedName: string, rng: Rng): ArrowHostileShape {
  const shape = ((): ArrowHostileShape => {
    switch (rng.pick(ARROW_HOSTILE_CLASSES)) {
      case "arrow-columns":
        return columns(seed, rng);
      case "arrow-dictionary":
        return dictionary(seed, rng);
      case "arrow-lengths":
        return lengths(seed, rng);
      case "arrow-body":
        return body(seed, rng);
      case "arrow-devices":
        return devices(seed, rng);
      case "arrow-streams":
        return streams(seed, rng);
      case "arrow-segments":
        return segments(seed, rng);
      case "arrow-depth":
        return depth(seed, rng);
    }
  })();
  return { ...shape, recipe: shape.recipe.replace(/\)$/, ` of ${seedName})`) };
}

/** The seed rewritten by arrow-js with other fields, columns or metadata (its one record batch). */
function rewrite(seed: Uint8Array, edit: (fields: Arrow.Field[], children: Arrow.Data[], metadata: Map<string, string>) => void): Uint8Array {
  const table = A.tableFromIPC(seed);
  if (table.batches.length !== 1) return seed; // lakebed writes one record batch
  const fields = [...table.schema.fields];
  const children = [...table.batches[0].data.children];
  const metadata = new Map(table.schema.metadata);
  edit(fields, children, metadata);
  const schema = new A.Schema(fields, metadata);
  const rows = children[0]?.length ?? 0;
  const struct = A.makeData({ type: new A.Struct(fields), length: rows, nullCount: 0, children });
  return A.tableToIPC(new A.Table(schema, [new A.RecordBatch(schema, struct)]), "file");
}

/** A limit drawn around `value`: often above it (accepted), often below (refused), or the default. */
function limitAround(rng: Rng, value: number): number | undefined {
  const roll = rng.below(3);
  if (roll === 0) return undefined;
  return roll === 1 ? value + rng.below(4) : Math.max(1, value - 1 - rng.below(Math.max(1, value)));
}

function columns(seed: Uint8Array, rng: Rng): ArrowHostileShape {
  const extra = rng.chance(0.3) ? rng.range(50, 120) : rng.range(0, 20);
  const bytes = rewrite(seed, (fields, children) => {
    const rows = children[0].length;
    for (let c = 0; c < extra; c++) {
      fields.push(new A.Field(`extra${c}`, new A.Int8(), false));
      children.push(A.makeData({ type: new A.Int8(), length: rows, data: new Int8Array(rows) }));
    }
  });
  const limit = limitAround(rng, 7 + extra);
  return { bytes, recipe: `arrow-columns(${7 + extra}, limit ${limit ?? "default"})`, limits: limit === undefined ? undefined : { columns: limit } };
}

function dictionary(seed: Uint8Array, rng: Rng): ArrowHostileShape {
  const entries = rng.chance(0.3) ? rng.range(900, 3_000) : rng.range(10, 200);
  const bytes = rewrite(seed, (fields, children) => {
    const i = fields.findIndex((f) => f.name === "action");
    const old = children[i].values as ArrayLike<number>;
    const type = new A.Dictionary(new A.Utf8(), new A.Int16(), 0, false);
    const names = [...ACTION_NAMES, ...Array.from({ length: entries - ACTION_NAMES.length }, (_, k) => `unused${k}`)];
    fields[i] = new A.Field("action", type, false);
    children[i] = A.makeData({ type, length: children[i].length, data: Int16Array.from(old), dictionary: A.vectorFromArray(names, new A.Utf8()) });
  });
  const limit = limitAround(rng, entries);
  return { bytes, recipe: `arrow-dictionary(${entries} entries, limit ${limit ?? "default"})`, limits: limit === undefined ? undefined : { dictionaryEntries: limit } };
}

/** Where the declared lengths of a file lie (flatbuffer layout: arrow-framing.ts). */
function lengthFields(bytes: Uint8Array): { name: string; at: number; width: 4 | 8 }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const table = (at: number) => at + view.getUint32(at, true);
  const field = (t: number, i: number) => {
    const vtable = t - view.getInt32(t, true);
    const off = 4 + 2 * i < view.getUint16(vtable, true) ? view.getUint16(vtable + 4 + 2 * i, true) : 0;
    return off === 0 ? -1 : t + off;
  };
  const vector = (at: number) => ({ first: at + view.getUint32(at, true) + 4, count: view.getUint32(at + view.getUint32(at, true), true) });
  const n = bytes.length;
  const out: { name: string; at: number; width: 4 | 8 }[] = [{ name: "footer length", at: n - 10, width: 4 }];
  const footer = table(n - 10 - view.getInt32(n - 10, true));
  for (const [i, kind] of [[2, "dictionary"], [3, "record batch"]] as const) {
    const blocks = field(footer, i);
    if (blocks < 0) continue;
    const { first, count } = vector(blocks);
    for (let k = 0; k < count; k++) {
      const block = first + 24 * k;
      out.push({ name: `${kind} ${k} offset`, at: block, width: 8 }, { name: `${kind} ${k} metadata`, at: block + 8, width: 4 }, { name: `${kind} ${k} body`, at: block + 16, width: 8 });
      const offset = Number(view.getBigInt64(block, true));
      const message = table(offset + (view.getUint32(offset, true) === 0xffffffff ? 8 : 4));
      out.push({ name: `${kind} ${k} message body`, at: field(message, 3), width: 8 });
      let batch = table(field(message, 2));
      if (kind === "dictionary") batch = table(field(batch, 1));
      out.push({ name: `${kind} ${k} rows`, at: field(batch, 0), width: 8 });
      const nodes = vector(field(batch, 1));
      for (let j = 0; j < nodes.count; j++) out.push({ name: `${kind} ${k} column ${j} values`, at: nodes.first + 16 * j, width: 8 }, { name: `${kind} ${k} column ${j} nulls`, at: nodes.first + 16 * j + 8, width: 8 });
      const buffers = vector(field(batch, 2));
      for (let j = 0; j < buffers.count; j++) out.push({ name: `${kind} ${k} buffer ${j} offset`, at: buffers.first + 16 * j, width: 8 }, { name: `${kind} ${k} buffer ${j} bytes`, at: buffers.first + 16 * j + 8, width: 8 });
    }
  }
  return out.filter((f) => f.at >= 0);
}

function lengths(seed: Uint8Array, rng: Rng): ArrowHostileShape {
  const bytes = seed.slice();
  const view = new DataView(bytes.buffer);
  const target = rng.pick(lengthFields(bytes));
  const old = target.width === 8 ? view.getBigInt64(target.at, true) : BigInt(view.getInt32(target.at, true));
  const value = rng.pick([2n ** 31n - 1n, 2n ** 32n, 2n ** 40n, 2n ** 53n, 2n ** 63n - 1n, -1n, old + 1n, old + 8n, old * 2n, 0n]);
  if (target.width === 8) view.setBigInt64(target.at, BigInt.asIntN(64, value), true);
  else view.setInt32(target.at, Number(BigInt.asIntN(32, value)), true);
  return { bytes, recipe: `arrow-lengths(${target.name} = ${BigInt.asIntN(target.width * 8, value)})` };
}

function body(seed: Uint8Array, rng: Rng): ArrowHostileShape {
  const bodies = lengthFields(seed).filter((f) => / body$/.test(f.name) && !/message/.test(f.name));
  const view = new DataView(seed.buffer, seed.byteOffset, seed.byteLength);
  const b = rng.pick(bodies);
  const offset = Number(view.getBigInt64(b.at - 16, true));
  const start = offset + view.getInt32(b.at - 8, true);
  const length = Number(view.getBigInt64(b.at, true));
  const cut = rng.below(Math.max(1, length));
  if (rng.chance(0.5)) return { bytes: seed.slice(0, start + cut), recipe: `arrow-body(${b.name} ends after ${cut} of ${length} bytes)` };
  const out = new Uint8Array(seed.length - (length - cut));
  out.set(seed.subarray(0, start + cut));
  out.set(seed.subarray(start + length), start + cut);
  return { bytes: out, recipe: `arrow-body(${b.name} loses ${length - cut} of ${length} bytes)` };
}

/** The seed with its lakebed.trace metadata edited as an object (or replaced by returned text). */
function withMeta(seed: Uint8Array, edit: (meta: Record<string, any>) => string | void): Uint8Array {
  return rewrite(seed, (_f, _c, metadata) => {
    const meta = JSON.parse(metadata.get("lakebed.trace") ?? "{}");
    const text = edit(meta);
    metadata.set("lakebed.trace", typeof text === "string" ? text : JSON.stringify(meta));
  });
}

function devices(seed: Uint8Array, rng: Rng): ArrowHostileShape {
  const n = rng.chance(0.3) ? rng.range(1_000, 1_100) : rng.range(1, 40);
  const limit = n >= 1_000 ? undefined : limitAround(rng, n);
  const bytes = withMeta(seed, (m) => {
    const top = Math.max(-1, ...m.devices.map((x: { device: number }) => x.device));
    // devices without events after the recorded ones, so that only the limit refuses them
    m.devices.push(...Array.from({ length: Math.max(0, n - m.devices.length) }, (_, k) => emptyDevice(top + k + 1)));
  });
  return { bytes, recipe: `arrow-devices(${n}, limit ${limit ?? "default"})`, limits: limit === undefined ? undefined : { devices: limit } };
}

function streams(seed: Uint8Array, rng: Rng): ArrowHostileShape {
  const extra = rng.chance(0.3) ? rng.range(240, 300) : rng.range(0, 40);
  let total = 0;
  const bytes = withMeta(seed, (m) => {
    if (m.devices.length === 0) m.devices.push(emptyDevice(0));
    const d = m.devices[0];
    // ascending after the recorded ones (INV-TRACE-2), so that only the limit refuses them
    const top = d.streams.reduce((a: bigint, s: string) => (BigInt(s) > a ? BigInt(s) : a), 0n);
    d.streams.push(...Array.from({ length: extra }, (_, k) => String(top + BigInt(k + 1))));
    total = d.streams.length;
  });
  const limit = total >= 240 ? undefined : limitAround(rng, total);
  return { bytes, recipe: `arrow-streams(${total}, limit ${limit ?? "default"})`, limits: limit === undefined ? undefined : { streams: limit } };
}

function segments(seed: Uint8Array, rng: Rng): ArrowHostileShape {
  const meta = JSON.parse(A.tableFromIPC(seed).schema.metadata.get("lakebed.trace") ?? "{}");
  const finals: { blocks: unknown[] }[] = (meta.devices ?? []).flatMap((d: { finalState: { blocks: unknown[] }[] }) => d.finalState);
  const count = finals.length;
  const blocks = finals.reduce((most, s) => Math.max(most, s.blocks.length), 0);
  const bytes = seed;
  const limits = { segments: limitAround(rng, count) ?? count, blocksPerSegment: limitAround(rng, blocks) ?? blocks, objects: rng.pick([100, 1_000, 100_000]) };
  return { bytes, recipe: `arrow-segments(${count} x up to ${blocks} blocks, limits ${limits.segments}/${limits.blocksPerSegment}/${limits.objects})`, limits };
}

function depth(seed: Uint8Array, rng: Rng): ArrowHostileShape {
  const levels = rng.range(1, rng.chance(0.5) ? 1_200 : 60);
  const dicts = rng.chance(0.5);
  const where = rng.pick(["annotations", "allocatorSettings", "devices[0].streams"] as const);
  const nested = `${(dicts ? '{"k":' : "[").repeat(levels)}1${(dicts ? "}" : "]").repeat(levels)}`;
  const bytes = withMeta(seed, (m) => {
    if (where === "devices[0].streams" && m.devices.length === 0) m.devices.push(emptyDevice(0));
    if (where === "devices[0].streams") m.devices[0].streams = "NESTED";
    else m[where] = "NESTED";
    return JSON.stringify(m).replace('"NESTED"', nested);
  });
  const limit = rng.chance(0.5) ? undefined : rng.range(5, 60);
  return { bytes, recipe: `arrow-depth(${levels} ${dicts ? "dicts" : "lists"} in ${where}, limit ${limit ?? "default"})`, limits: limit === undefined ? undefined : { depth: limit } };
}
