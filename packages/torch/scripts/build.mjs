// Builds build/liblakebed_torch.so (PyTorch's CUDAPluggableAllocator made of a lakebed policy),
// the host harness beside it, and dist/ (the package's paths for the CLI and tests).
//
//   1. wasm2c turns packages/core-sim/dist/core-sim.wasm, the very module the simulator runs,
//      into C (build/gen/core_sim.{c,h}); the policy is that generated code, nothing else.
//   2. Every import the module declares must be defined in src/native/device_imports.cc: one
//      missing fails the build here, naming it (and the link refuses undefined symbols).
//   3. policy_codes.h: core-sim's policy numbers and stat names, so C never restates them.
//   4. cc/c++ compile the generated C once per module (-O2; cached by the module's hash), the
//      wasm2c runtime, packages/native-cuda/src/native's driver sources as they are, and ours.
//   5. Link; libcuda.so.1 is opened at run time, so the library loads on machines without a GPU.
//
// Without wasm2c or a compiler it prints one line saying what to install and succeeds without the
// library (the tests then skip, saying why; CI sets LAKEBED_REQUIRE_TORCH_LIB=1 and fails instead).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { WABT_RUNTIME, WASM_RT_DEFINES } from "./wasm-rt.mjs";

const pkgRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(pkgRoot, "../..");
const nativeDir = join(repoRoot, "packages/native-cuda/src/native");
const ownDir = join(pkgRoot, "src/native");
const build = join(pkgRoot, "build");
const gen = join(build, "gen");
const obj = join(build, "obj");

const NATIVE_SOURCES = ["driver_core.cc", "cuda_backend.cc", "host_backend.cc", "cuda_loader.cc"];
const OWN_SOURCES = ["alloc_conf.cc", "stream_events.cc", "device_imports.cc", "wasm_policy.cc", "torch_allocator.cc", "torch_errors.cc", "c_api.cc"];

function which(tool) {
  const r = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

function run(command, args) {
  const r = spawnSync(command, args, { cwd: pkgRoot, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`@lakebed/torch: ${command} ${args.slice(-3).join(" ")} failed (exit ${r.status ?? r.signal})`);
}

function newerThan(target, sources) {
  if (!existsSync(target)) return false;
  const t = statSync(target).mtimeMs;
  return sources.every((s) => existsSync(s) && statSync(s).mtimeMs <= t);
}

/**
 * The files an object was built from, as the compiler listed them (-MMD's make rule: the source and
 * every header it included, however deep), or null where there is no list yet. A hand-kept list of
 * headers misses some (it once left cuda_loader.o built against an older cuda_abi.h beside a
 * cuda_backend.o built against the newer one: one struct, two layouts, and a library that reported
 * "0 device(s)" on an H200).
 */
function dependenciesOf(depFile) {
  if (!existsSync(depFile)) return null;
  const rule = readFileSync(depFile, "utf8").replace(/\\\n/g, " ");
  const colon = rule.indexOf(": ");
  return colon < 0 ? null : rule.slice(colon + 2).split(/\s+/).filter(Boolean);
}

async function writeDist() {
  // dist/index.js: where things are, for `lakebed torch` and the tests (no build step of its own)
  mkdirSync(join(pkgRoot, "dist"), { recursive: true });
  writeFileSync(join(pkgRoot, "dist/index.js"), readFileSync(join(pkgRoot, "src/index.js")));
  writeFileSync(join(pkgRoot, "dist/index.d.ts"), readFileSync(join(pkgRoot, "src/index.d.ts")));
}

async function main() {
  await writeDist();
  const wasm2c = which("wasm2c");
  const cc = process.env.CC ?? which("cc") ?? which("gcc");
  const cxx = process.env.CXX ?? which("c++") ?? which("g++");
  const missing = [!wasm2c && "wasm2c", !cc && "a C compiler", !cxx && "a C++ compiler", !existsSync(join(WABT_RUNTIME, "wasm-rt-impl.c")) && `${WABT_RUNTIME}/wasm-rt-impl.c`].filter(Boolean);
  if (missing.length) {
    console.log(`@lakebed/torch: ${missing.join(", ")} not found, liblakebed_torch.so not built (apt-get install wabt g++)`);
    return;
  }
  const wasmPath = join(repoRoot, "packages/core-sim/dist/core-sim.wasm");
  const wasm = readFileSync(wasmPath);
  // the generated C depends on the module and on the wasm2c that wrote it (a newer wabt's runtime
  // header beside C an older one generated would not match)
  const wasm2cVersion = spawnSync(wasm2c, ["--version"], { encoding: "utf8" }).stdout?.trim() ?? "";
  // the stamp: the module's hash (test/torch-host.test.ts checks it against the simulator's), then wasm2c's version
  const hash = `${createHash("sha256").update(wasm).digest("hex").slice(0, 16)} wasm2c ${wasm2cVersion}`;
  mkdirSync(gen, { recursive: true });
  mkdirSync(obj, { recursive: true });

  // 1. the policy as C, written again only when the module or wasm2c changed (its object is then
  // rebuilt by the rule of step 4, as every other object)
  const stamp = join(gen, "core_sim.hash");
  const fresh = existsSync(stamp) && readFileSync(stamp, "utf8") === hash && existsSync(join(gen, "core_sim.c")) && existsSync(join(gen, "core_sim.h"));
  const started = performance.now();
  if (!fresh) {
    run(wasm2c, [wasmPath, "-o", join(gen, "core_sim.c"), "-n", "core_sim"]);
    writeFileSync(stamp, hash);
  }

  // 2. every import implemented
  const header = readFileSync(join(gen, "core_sim.h"), "utf8");
  const imports = [...header.matchAll(/\/\* import: '(\w+)' '(\w+)' \*\//g)].map((m) => `${m[1]}.${m[2]}`);
  const defined = new Set([...readFileSync(join(ownDir, "device_imports.cc"), "utf8").matchAll(/LAKEBED_IMPORT\((\w+)\)\(/g)].map((m) => `device.${m[1]}`));
  defined.add("env.abort"); // wasm_policy.cc
  const notImplemented = imports.filter((i) => !defined.has(i));
  if (notImplemented.length) {
    throw new Error(`@lakebed/torch: core-sim.wasm imports ${notImplemented.join(", ")}, which src/native/device_imports.cc does not implement: add each (native-cuda's wasm-imports.ts shows the binding)`);
  }

  // 3. core-sim's numbers
  const coreSim = await import(join(repoRoot, "packages/core-sim/dist/index.js"));
  const codes = Object.entries(coreSim.POLICY_CODES).map(([name, code]) => `    {"${name}", ${code}},`).join("\n");
  const stats = coreSim.STAT_NAMES.map((n) => `    "${n}",`).join("\n");
  const codesHeader = `// Generated by scripts/build.mjs from @lakebed/core-sim (POLICY_CODES, STAT_NAMES). Do not edit.
#pragma once
namespace lakebed::torch {
struct PolicyCode { const char* name; int code; };
inline constexpr PolicyCode kPolicyCodes[] = {
${codes}
};
inline constexpr const char* kStatNames[] = {
${stats}
};
}  // namespace lakebed::torch
`;
  const codesPath = join(gen, "policy_codes.h");
  if (!existsSync(codesPath) || readFileSync(codesPath, "utf8") !== codesHeader) writeFileSync(codesPath, codesHeader);

  // 4. compile
  const common = ["-fPIC", "-O2", "-g0", `-I${gen}`, `-I${WABT_RUNTIME}`, `-I${nativeDir}`, `-I${ownDir}`, ...WASM_RT_DEFINES];
  const cxxFlags = [...common, "-std=c++17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"];
  const objects = [];
  // An object is rebuilt when its source, any header the compiler saw it include, or its flags
  // changed since it was built.
  const compile = (compiler, flags, source, name) => {
    const out = join(obj, name);
    objects.push(out);
    const flagsFile = `${out}.flags`;
    const flagsText = [compiler, ...flags].join(" ");
    const deps = dependenciesOf(`${out}.d`);
    const sameFlags = existsSync(flagsFile) && readFileSync(flagsFile, "utf8") === flagsText;
    if (deps && sameFlags && newerThan(out, [source, ...deps])) return;
    run(compiler, [...flags, "-MMD", "-MF", `${out}.d`, "-c", source, "-o", out]);
    writeFileSync(flagsFile, flagsText);
  };
  compile(cc, [...common, "-w"], join(gen, "core_sim.c"), "core_sim.o");
  compile(cc, [...common, "-w"], join(WABT_RUNTIME, "wasm-rt-impl.c"), "wasm-rt-impl.o");
  for (const s of NATIVE_SOURCES) compile(cxx, cxxFlags, join(nativeDir, s), `native_${s.replace(".cc", ".o")}`);
  for (const s of OWN_SOURCES) compile(cxx, cxxFlags, join(ownDir, s), s.replace(".cc", ".o"));

  // 5. link (exports: lakebed_torch.h's functions and the wasm2c runtime's, nothing of C++)
  const lib = join(build, "liblakebed_torch.so");
  run(cxx, ["-shared", "-o", lib, ...objects, "-Wl,--no-undefined", "-Wl,--exclude-libs,ALL", "-ldl", "-lpthread"]);
  // the harness's stand-in for PyTorch's libc10.so (harness/c10_standin.h says why)
  const standin = join(build, "c10-standin");
  mkdirSync(standin, { recursive: true });
  run(cxx, ["-std=c++17", "-O2", "-fPIC", "-shared", join(pkgRoot, "harness/c10_standin.cc"), "-o", join(standin, "libc10.so"), "-Wl,-soname,libc10.so"]);
  const harness = join(build, "lakebed-torch-harness");
  run(cxx, ["-std=c++17", "-O2", `-I${ownDir}`, join(pkgRoot, "harness/host_harness.cc"), "-o", harness, `-L${build}`, "-llakebed_torch", `-L${standin}`, "-lc10", "-Wl,-rpath,$ORIGIN:$ORIGIN/c10-standin", "-lpthread"]);
  console.log(`@lakebed/torch: built ${lib} (${(statSync(lib).size / 1024).toFixed(0)} KiB) in ${((performance.now() - started) / 1000).toFixed(1)} s${fresh ? " (policy C cached)" : ""}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
