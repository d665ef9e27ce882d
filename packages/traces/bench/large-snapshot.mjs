#!/usr/bin/env node
// The largest traces: imports a generated snapshot of a few GiB, plain and gzip, and reports wall
// time and peak resident memory against CPython's `pickle.load` of the same file in the same run.
//
// The snapshot is written as PyTorch writes one (pickle protocol 4 with FRAMEs, every dict and list
// memoized, keys and repeated strings fetched from the memo): one device, one 1 GiB segment, and
// allocations of 1 MiB that live for 64 events, each entry with a stack of 12 frames shared by
// reference (PyTorch deduplicates frames). It is generated to a target size under /tmp and deleted
// after the run. Each import runs in a fresh process (`lakebed`'s own path: readTrace, which reads a
// snapshot pickle as a stream, then nothing else), its peak resident memory read by /usr/bin/time;
// CPython runs under an address-space cap (--python-cap-gib, default 12) so that it fails with
// MemoryError rather than exhaust a shared machine, which the report then says.
//
// Usage: node packages/traces/bench/large-snapshot.mjs [--gib 0.5,3] [--plain-only-gib 4.5] [--python-cap-gib 12] [--out bench/large-snapshot.md]
// (--gib: the sizes to generate, one after the other, each deleted before the next, each imported
// plain and gzip, by lakebed and by CPython; --plain-only-gib: sizes imported plain by lakebed alone,
// to show files past 4 GiB, where CPython needs more memory than any cap this machine allows)
// (after building the package; needs /usr/bin/time and python3)
import { execFileSync, spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, mkdirSync, openSync, writeSync, closeSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createGzip } from "node:zlib";
import { pipeline } from "node:stream/promises";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { cpus } from "node:os";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const sizesGiB = option("--gib", "0.5,3").split(",").filter(Boolean).map(Number);
const plainOnlyGiB = option("--plain-only-gib", "").split(",").filter(Boolean).map(Number);
const pythonCapGiB = Number(option("--python-cap-gib", "12"));
const out = option("--out", join(here, "../../../bench/large-snapshot.md"));
const dir = join("/tmp", `lakebed-large-${process.pid}`);
mkdirSync(dir, { recursive: true });

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Pickle opcodes used here (pickle-opcodes.ts has them all). */
const OP = { PROTO: 0x80, FRAME: 0x95, STOP: 0x2e, MARK: 0x28, EMPTY_DICT: 0x7d, EMPTY_LIST: 0x5d, MEMOIZE: 0x94, SETITEMS: 0x75, APPENDS: 0x65, APPEND: 0x61, BINGET: 0x68, LONG_BINGET: 0x6a, SHORT_BINUNICODE: 0x8c, BININT1: 0x4b, BININT: 0x4a, LONG1: 0x8a };

/** Writes the pickle in frames of about 64 KiB, as CPython's framer does. */
class Writer {
  constructor(fd) {
    this.fd = fd;
    this.buf = Buffer.alloc(1 << 20);
    this.n = 0;
    this.memo = 0;
    this.strings = new Map();
    this.written = 0;
  }
  byte(b) {
    this.buf[this.n++] = b;
  }
  u32(v) {
    this.buf.writeUInt32LE(v, this.n);
    this.n += 4;
  }
  memoize() {
    this.byte(OP.MEMOIZE);
    return this.memo++;
  }
  get(index) {
    if (index < 256) {
      this.byte(OP.BINGET);
      this.byte(index);
    } else {
      this.byte(OP.LONG_BINGET);
      this.u32(index);
    }
  }
  str(s) {
    const known = this.strings.get(s);
    if (known !== undefined) return this.get(known);
    const bytes = Buffer.from(s, "utf8");
    this.byte(OP.SHORT_BINUNICODE);
    this.byte(bytes.length);
    bytes.copy(this.buf, this.n);
    this.n += bytes.length;
    this.strings.set(s, this.memoize());
  }
  int(v) {
    if (v < 256) {
      this.byte(OP.BININT1);
      this.byte(v);
    } else if (v < 2 ** 31) {
      this.byte(OP.BININT);
      this.u32(v);
    } else {
      // LONG1 as CPython writes a positive integer: little-endian, with a sign byte when the top bit is set
      const bytes = [];
      let x = v;
      while (x > 0) {
        bytes.push(x % 256);
        x = Math.floor(x / 256);
      }
      if (bytes[bytes.length - 1] >= 0x80) bytes.push(0);
      this.byte(OP.LONG1);
      this.byte(bytes.length);
      for (const b of bytes) this.byte(b);
    }
  }
  /** Ends a frame when it passed 64 KiB (call between opcodes). */
  maybeFrame(force = false) {
    if (this.n < 64 * 1024 && !(force && this.n > 0)) return;
    const header = Buffer.alloc(9);
    header[0] = OP.FRAME;
    header.writeBigUInt64LE(BigInt(this.n), 1);
    writeSync(this.fd, header);
    writeSync(this.fd, this.buf, 0, this.n);
    this.written += 9 + this.n;
    this.n = 0;
  }
}

function generate(file, targetBytes) {
  const fd = openSync(file, "w");
  const w = new Writer(fd);
  writeSync(fd, Buffer.from([OP.PROTO, 4]));
  const frames = Array.from({ length: 200 }, (_, i) => ({ filename: `/opt/conda/lib/python3.11/site-packages/torch/nn/modules/layer_${i % 37}.py`, line: 100 + i, name: `forward_${i}` }));
  const frameMemo = new Array(frames.length).fill(-1);
  w.byte(OP.EMPTY_DICT);
  w.memoize();
  w.byte(OP.MARK);
  w.str("segments");
  w.byte(OP.EMPTY_LIST);
  w.memoize();
  w.str("device_traces");
  w.byte(OP.EMPTY_LIST);
  w.memoize();
  w.byte(OP.EMPTY_LIST); // device 0's list, the only item of device_traces (APPEND after it)
  w.memoize();
  const base = 0x7f0000000000;
  const segmentBytes = GiB;
  const live = 64;
  let events = 0;
  let time = 1_700_000_000_000_000;
  const entry = (action, addr, size, i) => {
    w.byte(OP.EMPTY_DICT);
    w.memoize();
    w.byte(OP.MARK);
    w.str("action");
    w.str(action);
    w.str("addr");
    w.int(addr);
    w.str("size");
    w.int(size);
    w.str("stream");
    w.int(0);
    w.str("time_us");
    w.int(time++);
    w.str("frames");
    w.byte(OP.EMPTY_LIST);
    w.memoize();
    w.byte(OP.MARK);
    for (let k = 0; k < 12; k++) {
      const f = (i * 7 + k * 13) % frames.length;
      if (frameMemo[f] >= 0) {
        w.get(frameMemo[f]);
      } else {
        w.byte(OP.EMPTY_DICT);
        frameMemo[f] = w.memoize();
        w.byte(OP.MARK);
        w.str("filename");
        w.str(frames[f].filename);
        w.str("line");
        w.int(frames[f].line);
        w.str("name");
        w.str(frames[f].name);
        w.byte(OP.SETITEMS);
      }
    }
    w.byte(OP.APPENDS);
    w.str("compile_context");
    w.str("N/A");
    w.byte(OP.SETITEMS);
    events++;
  };
  // batches of 1,000 entries per MARK ... APPENDS, as CPython's _batch_appends writes them
  let inBatch = 0;
  const item = (action, addr, size, i) => {
    if (inBatch === 0) w.byte(OP.MARK);
    entry(action, addr, size, i);
    if (++inBatch === 1000) {
      w.byte(OP.APPENDS);
      inBatch = 0;
    }
    w.maybeFrame();
  };
  item("segment_alloc", base, segmentBytes, 0);
  const slot = (i) => base + (i % 1024) * MiB;
  let i = 0;
  // about 115 bytes per entry; stop with room for the frees that close the trace
  while (w.written + w.n < targetBytes - (live * 3 + 2) * 130) {
    item("alloc", slot(i), MiB, i);
    if (i >= live) {
      item("free_requested", slot(i - live), MiB, i);
      item("free_completed", slot(i - live), MiB, i);
    }
    i++;
  }
  for (let j = Math.max(0, i - live); j < i; j++) {
    item("free_requested", slot(j), MiB, j);
    item("free_completed", slot(j), MiB, j);
  }
  item("segment_free", base, segmentBytes, i);
  if (inBatch > 0) w.byte(OP.APPENDS);
  w.byte(OP.APPEND); // device 0's list into device_traces
  w.byte(OP.SETITEMS);
  w.byte(OP.STOP);
  w.maybeFrame(true);
  closeSync(fd);
  return events;
}

/** Runs `command` under /usr/bin/time; wall seconds, peak resident bytes, status and the last line of stderr. */
function measured(command, commandArgs, env = process.env) {
  const r = spawnSync("/usr/bin/time", ["-f", "TIME %e %M", command, ...commandArgs], { encoding: "utf8", env, maxBuffer: 1 << 26 });
  const lines = r.stderr.trim().split("\n");
  const timeLine = [...lines].reverse().find((l) => l.startsWith("TIME "));
  const [, seconds, kb] = timeLine ? timeLine.split(" ") : [0, NaN, NaN];
  // the error's own line (a Node stack ends with the version line, so not the last one)
  const message = lines.find((l) => /Error|lakebed|refused|exceed/.test(l)) ?? lines.find((l) => !l.startsWith("TIME ") && l.trim() !== "") ?? "";
  return { seconds: Number(seconds), peakBytes: Number(kb) * 1024, status: r.status, stdout: r.stdout.trim(), message };
}

function lakebedImport(file) {
  const code = `import { readTrace } from ${JSON.stringify(join(here, "../dist/index.js"))};
const t = await readTrace(process.argv[1]);
console.log(t.devices.reduce((n, d) => n + d.events.length, 0));`;
  return measured(process.execPath, ["--input-type=module", "-e", code, file]);
}

function pythonLoad(file) {
  const code = [
    "import gzip, pickle, resource, sys",
    `cap = int(${pythonCapGiB} * 1024 ** 3)`,
    "resource.setrlimit(resource.RLIMIT_AS, (cap, cap))",
    "f = sys.argv[1]",
    "opener = gzip.open if open(f, 'rb').read(2) == b'\\x1f\\x8b' else (lambda p: open(p, 'rb'))",
    "try:",
    "    s = pickle.load(opener(f))",
    "    print(len(s['device_traces'][0]))",
    "except MemoryError:",
    "    print('MemoryError', file=sys.stderr); sys.exit(3)",
  ].join("\n");
  return measured("python3", ["-c", code, file]);
}

const gib = (b) => (b / GiB).toFixed(2);
const rows = [];
const plain = join(dir, "snapshot.pickle");
const gz = join(dir, "snapshot.pickle.gz");
try {
  const runs = [...sizesGiB.map((gib) => ({ gib, plainOnly: false })), ...plainOnlyGiB.map((gib) => ({ gib, plainOnly: true }))];
  for (const { gib: targetGiB, plainOnly } of runs) {
    process.stderr.write(`large-snapshot: writing ${targetGiB} GiB to ${plain}\n`);
    let t = performance.now();
    const events = generate(plain, targetGiB * GiB);
    const plainBytes = statSync(plain).size;
    process.stderr.write(`  ${events} events, ${plainBytes} bytes in ${((performance.now() - t) / 1000).toFixed(0)} s\n`);
    const files = [["plain", plain, plainBytes]];
    if (!plainOnly) {
      t = performance.now();
      await pipeline(createReadStream(plain), createGzip({ level: 1 }), createWriteStream(gz));
      const gzBytes = statSync(gz).size;
      process.stderr.write(`  ${gzBytes} bytes gzip (level 1) in ${((performance.now() - t) / 1000).toFixed(0)} s\n`);
      files.push(["gzip", gz, gzBytes]);
    }
    for (const [label, file, bytes] of files) {
      const ours = lakebedImport(file);
      process.stderr.write(`  ${label}: lakebed ${ours.seconds} s, ${gib(ours.peakBytes)} GiB ${ours.status === 0 ? "" : ours.message}\n`);
      const python = plainOnly ? null : pythonLoad(file);
      if (python !== null) process.stderr.write(`  ${label}: CPython (cap ${pythonCapGiB} GiB) ${python.seconds} s, ${gib(python.peakBytes)} GiB ${python.status === 0 ? "" : python.message}\n`);
      rows.push({ label, bytes, events, ours, python });
    }
    rmSync(plain, { force: true });
    rmSync(gz, { force: true });
  }
  const lines = [
    "# The largest traces: import of generated multi-GiB snapshots",
    "",
    "Written by `node packages/traces/bench/large-snapshot.mjs` (the file says how the snapshots are",
    "generated: trace entries with 12 shared frames each, about 96 bytes of pickle per entry, gzip at",
    "level 1). Each import in a fresh process (readTrace alone, which reads a snapshot pickle as a stream);",
    "peak resident memory from /usr/bin/time. Events per GiB: the file's events over lakebed's peak resident memory.",
    `CPython's \`pickle.load\` of the same file in the same run, under a ${pythonCapGiB} GiB address-space cap (a MemoryError says it`,
    `needed more; "not run": a size imported by lakebed alone, past 4 GiB, where CPython would need several times the cap). Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, shared with other work, Node ${process.version}, ${execFileSync("python3", ["--version"], { encoding: "utf8" }).trim()}, ${new Date().toISOString().slice(0, 10)}.`,
    "",
    "| file | events | lakebed readTrace | peak resident | events per GiB resident | CPython pickle.load | peak resident |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const { label, bytes, events, ours, python } of rows) {
    const oursText = ours.status === 0 ? `${ours.seconds.toFixed(1)} s` : `failed (${ours.status}): ${ours.message.slice(0, 120)}`;
    const perGiB = ours.status === 0 ? Math.round(events / (ours.peakBytes / GiB)).toLocaleString("en-US") : "-";
    const pythonText = python === null ? "not run" : python.status === 0 ? `${python.seconds.toFixed(1)} s` : python.status === 3 ? `MemoryError after ${python.seconds.toFixed(1)} s` : `failed (${python.status}): ${python.message.slice(0, 120)}`;
    lines.push(`| ${label}, ${gib(bytes)} GiB | ${events.toLocaleString("en-US")} | ${oursText} | ${gib(ours.peakBytes)} GiB | ${perGiB} | ${pythonText} | ${python === null ? "-" : `${gib(python.peakBytes)} GiB`} |`);
  }
  writeFileSync(out, lines.join("\n") + "\n");
  process.stdout.write(lines.join("\n") + "\n");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
