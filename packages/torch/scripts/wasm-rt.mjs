// How the wasm2c runtime is compiled into the library: one definition for scripts/build.mjs and for
// the benches that link the library's objects (bench/wrapper-bench.mjs), so that both build the
// policy's module the same way.

/** Where Debian's wabt puts wasm2c's runtime sources (wasm-rt-impl.c, wasm-rt.h). */
export const WABT_RUNTIME = process.env.WASM2C_RUNTIME ?? "/usr/share/wabt/wasm2c";

// wasm-rt without the signal handler: PyTorch's process keeps its own SIGSEGV handling, and
// bounds are checked explicitly (a trap is a failed call, never a signal).
export const WASM_RT_DEFINES = ["-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0", "-DWASM_RT_USE_STACK_DEPTH_COUNT=1", "-DWASM_RT_MAX_CALL_STACK_DEPTH=100000"];
