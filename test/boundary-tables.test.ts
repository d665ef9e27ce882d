import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEVICE_CALL_NAMES, instantiate, STAT_NAMES, wasmModule } from "@lakebed/core-sim";
import { Action } from "@lakebed/traces";
import { CALL_KINDS } from "../packages/native-cuda/src/call-kinds.js";
import { bindDriver } from "../packages/native-cuda/src/wasm-imports.js";
import { CallRecorder } from "../packages/api/src/live/call-recorder.js";
import { repoRoot } from "./support/shared-traces.js";

/**
 * The tables that cross a language boundary (AssemblyScript / TypeScript / C++), each declared once
 * and compared here with every copy the other side needs: a copy that drifts (an entry renamed,
 * added, dropped or moved) fails with the name of the file and the entry. Where a table can be
 * read from the built module itself (its imports, its exports, its counts), that is the side
 * compared.
 */
const file = (path: string) => readFileSync(join(repoRoot, path), "utf8");
/** `export const NAME: type = value;` declarations of an AssemblyScript or TypeScript file, in order. */
function constants(path: string, prefix: string): [string, number][] {
  const re = new RegExp(`^(?:export )?const (${prefix}\\w+)(?:: \\w+)? = (\\d+);`, "gm");
  return [...file(path).matchAll(re)].map((m) => [m[1], Number(m[2])]);
}
/** memCreate -> MEM_CREATE, SegmentAlloc -> SEGMENT_ALLOC */
const screaming = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
const assemblyFiles = (dir: string) =>
  readdirSync(join(repoRoot, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => join(dir, f));

const wasm = instantiate();

describe("device call kinds", () => {
  // declared once: native-cuda's X-macro table (src/native/call_kinds.h)
  const header = "packages/native-cuda/src/native/call_kinds.h";
  const table = [...file(header).matchAll(/^\s*X\(k\w+, "(\w+)",/gm)].map((m) => m[1]);

  it(`native-cuda's CALL_KINDS (src/call-kinds.ts) is ${header}'s table`, () => {
    expect(table.length).toBeGreaterThan(0);
    expect([...CALL_KINDS]).toEqual(table);
  });

  it("core-sim counts the first of them, under the same names (src/device-calls.ts, the Wasm's deviceCallKinds)", () => {
    expect(DEVICE_CALL_NAMES).toEqual(table.slice(0, wasm.deviceCallKinds()));
  });

  it("assembly/device/device.ts numbers them in that order (CALL_*)", () => {
    const declared = constants("packages/core-sim/assembly/device/device.ts", "CALL_");
    const expected: [string, number][] = [...DEVICE_CALL_NAMES.map((n, i): [string, number] => [`CALL_${screaming(n)}`, i]), ["CALL_KINDS", DEVICE_CALL_NAMES.length]];
    expect(declared).toEqual(expected);
  });
});

describe("the Wasm's device imports", () => {
  // declared once: the @external declarations of assembly/device/imported.ts (the module imports
  // those its code calls: asc drops the others)
  const declared = [...file("packages/core-sim/assembly/device/imported.ts").matchAll(/@external\("device", "(\w+)"\)/g)].map((m) => m[1]);

  it("the module imports only what assembly/device/imported.ts declares", () => {
    const imported = WebAssembly.Module.imports(wasmModule())
      .filter((i) => i.module === "device")
      .map((i) => i.name);
    expect(imported.length).toBeGreaterThan(0);
    for (const name of imported) expect(declared, name).toContain(name);
  });

  it("native-cuda binds each of them to a driver (src/wasm-imports.ts)", () => {
    const bound = bindDriver({ direct: {} } as never, new CallRecorder()).imports;
    expect(Object.keys(bound).sort()).toEqual([...declared].sort());
  });

  it("each is one driver call kind (memGetInfo answers two of them)", () => {
    for (const name of declared) expect(CALL_KINDS as readonly string[], name).toContain(name.replace(/^memGetInfo\w+$/, "memGetInfo"));
  });
});

describe("trace actions", () => {
  // declared once: packages/traces' Action enum (src/model.ts); the Wasm's copy is assembly/replay/actions.ts
  const copy = "packages/core-sim/assembly/replay/actions.ts";

  it(`${copy} gives each Action its value`, () => {
    const expected = Object.entries(Action)
      .filter(([, v]) => typeof v === "number")
      .map(([k, v]): [string, number] => [`ACTION_${screaming(k)}`, v as number]);
    expect(constants(copy, "ACTION_")).toEqual(expected);
  });

  it(`no other AssemblyScript file declares an action value (they import ${copy})`, () => {
    const others = assemblyFiles("packages/core-sim/assembly").filter((f) => f !== copy && /const ACTION_\w+: u8 = \d/.test(file(f)));
    expect(others).toEqual([]);
  });
});

describe("statistics", () => {
  // declared once: assembly/policies/stats.ts (the flat table's layout); src/stats-table.ts names it
  const layout = Object.fromEntries(constants("packages/core-sim/assembly/policies/stats.ts", ""));

  it("src/stats-table.ts names every entry of the Wasm's table", () => {
    expect(STAT_NAMES.length).toBe(wasm.statCount());
    expect(layout.STAT_COUNT).toBe(STAT_NAMES.length);
  });

  it("in assembly/policies/stats.ts's order (kinds, pools, metrics, scalars, counters)", () => {
    const at = (kind: string, pool: string, metric: string) => (layout[`STAT_${kind}`] * 3 + layout[`POOL_${pool}`]) * 4 + layout[`METRIC_${metric}`];
    for (const [i, name] of STAT_NAMES.entries()) {
      const parts = name.split(".");
      if (parts.length === 3) {
        const pool = parts[1] === "all" ? "ALL" : parts[1] === "small_pool" ? "SMALL" : "LARGE";
        expect(at(parts[0].toUpperCase(), pool, parts[2].toUpperCase()), name).toBe(i);
      } else if (parts.length === 2) {
        expect(layout[`SCALAR_${parts[0].toUpperCase()}`] + layout[`METRIC_${parts[1].toUpperCase()}`], name).toBe(i);
      } else {
        expect(layout[name.toUpperCase()], name).toBe(i);
      }
    }
  });
});

describe("replay counters", () => {
  // declared once: assembly/replay/replay.ts (COUNTER_*); src/replay-device.ts reads some by number
  const declared = Object.fromEntries(constants("packages/core-sim/assembly/replay/replay.ts", "COUNTER"));

  it("the Wasm has as many as replay.ts declares", () => {
    expect(declared.COUNTERS).toBe(wasm.replayCounterCount());
  });

  it("src/replay-device.ts reads each by replay.ts's number", () => {
    const read = constants("packages/core-sim/src/replay-device.ts", "COUNTER_");
    expect(read.length).toBeGreaterThan(0);
    for (const [name, n] of read) expect(declared[name], name).toBe(n);
  });
});

describe("layout block states", () => {
  // declared once: assembly/replay/layout.ts (BLOCK_*); src/replay-device.ts names them by number
  it("src/replay-device.ts's BLOCK_STATES are layout.ts's BLOCK_* in order", () => {
    const declared = constants("packages/core-sim/assembly/replay/layout.ts", "BLOCK_");
    const named = /const BLOCK_STATES\b[^=]*= \[([^\]]*)\]/.exec(file("packages/core-sim/src/replay-device.ts"))![1].match(/"(\w+)"/g)!.map((s) => s.slice(1, -1));
    expect(declared).toEqual(named.map((n, i): [string, number] => [`BLOCK_${n.toUpperCase()}`, i]));
  });
});

describe("the Wasm's exports", () => {
  // declared once: assembly/index.ts; src/wasm-exports.ts is generated from asc's declarations by the build
  const generated = file("packages/core-sim/src/wasm-exports.ts");
  const members = [...generated.matchAll(/^  (\w+)(\(([^)]*)\))?[:;]/gm)].map((m) => ({ name: m[1], params: m[2] === undefined ? null : m[3] ? m[3].split(",").length : 0 }));
  const exports = wasm as unknown as Record<string, unknown>;

  it("src/wasm-exports.ts declares every export of the built module, and only those", () => {
    expect(members.map((m) => m.name).sort()).toEqual(WebAssembly.Module.exports(wasmModule()).map((e) => e.name).sort());
  });

  it("with each function's number of parameters", () => {
    for (const m of members) {
      if (m.params === null) continue;
      expect(typeof exports[m.name], m.name).toBe("function");
      expect((exports[m.name] as (...args: number[]) => unknown).length, m.name).toBe(m.params);
    }
  });
});
