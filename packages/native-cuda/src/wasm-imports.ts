// The Device seam's TypeScript half: binds core-sim's Wasm "device" imports (its
// assembly/device/imported.ts lists them) to one Driver of this package. Each import is exactly
// one driver call, made as the policy asked: nothing is decided here. What this layer adds is
// bookkeeping the driver API does not hand back per call: the caller's log of (kind, bytes) for
// every call (a CallSink: the live replay's CallRecorder in packages/api), the sizes of handles and
// mallocs (memRelease and free name no size, the simulator's log does), and, when asked, the
// device memory in use after every call that takes memory (a MemorySampler).
//
// This is the hot path of a live replay: one import per device call, and cuMemMap itself answers
// in about a microsecond. So each import calls the addon directly (Driver.direct: no second
// argument check in JS, since the addon checks every argument and refuses a bad one with the same
// DeviceError), allocates nothing per call, and classifies nothing on success: map and setAccess
// come back as the addon's 0 or -1 (refused for want of memory or by an injected fault; the policy
// rolls its operation back), and any other failure is the addon's DeviceError unwinding the replay.
//
// core-sim is not a dependency: its import object is a plain record of functions over numbers.
import { CALL_KINDS, type CallKind } from "./call-kinds.js";
import type { Driver } from "./driver.js";

/** The Wasm's "device" import object (core-sim's DeviceImports). */
export type WasmDeviceImports = Record<string, (...args: number[]) => number | void>;

/**
 * Where the binding logs each call. Kinds are CALL_KINDS indices, which are core-sim's
 * DEVICE_CALL_NAMES indices too (that list is CALL_KINDS' prefix: test/boundary-tables.test.ts).
 */
export interface CallSink {
  /** also take each call's latency and operands (took) */
  readonly timed: boolean;
  /** a call about to be made; returns its index for took */
  record(kind: number, bytes: number): number;
  /** call `index`, started at t0 (performance.now()), returned: the address and handle it named or got */
  took(index: number, t0: number, va: number, handle: number): void;
}

/** Takes a reading of the device memory in use (after each call that takes memory). */
export interface MemorySampler {
  sample(): void;
}

const kind = (name: CallKind) => CALL_KINDS.indexOf(name);
const K = {
  memCreate: kind("memCreate"),
  memRelease: kind("memRelease"),
  addressReserve: kind("addressReserve"),
  addressFree: kind("addressFree"),
  map: kind("map"),
  setAccess: kind("setAccess"),
  unmap: kind("unmap"),
  malloc: kind("malloc"),
  free: kind("free"),
  copyToHost: kind("copyToHost"),
  copyFromHost: kind("copyFromHost"),
  memGetInfo: kind("memGetInfo"),
  hostReserve: kind("hostReserve"),
  copyOut: kind("copyOut"),
  copyIn: kind("copyIn"),
  hostRelease: kind("hostRelease"),
};

export interface BoundDriver {
  imports: WasmDeviceImports;
  /** the instance's memory, for the copy imports; set once the instance exists */
  setMemory(memory: { readonly buffer: ArrayBuffer }): void;
  /** pattern fills and checks made (data verification; not in the recorded sequence) */
  patternCalls(): { fills: number; checks: number };
}

export function bindDriver(driver: Driver, recorder: CallSink, watch?: MemorySampler): BoundDriver {
  const d = driver.direct;
  const handleBytes = new Map<number, number>();
  const mallocBytes = new Map<number, number>();
  let arenaBytes = 0; // hostRelease names no size either: the arena's, as the simulator logs it
  let memory: { readonly buffer: ArrayBuffer } | null = null;
  let fills = 0;
  let checks = 0;

  // Every import records its call before making it (a call that throws is in the log, as the
  // simulator counts a call before it can fail). Timed recorders also take the time from here
  // (the policy's import) to the answer, and the operands: the address and handle named, or for
  // memCreate/addressReserve/malloc the ones the driver returned; for addressReserve the handle
  // column holds the alignment.
  const timed = recorder.timed;

  function hostBytes(ptr: number, bytes: number): Uint8Array {
    if (!memory) throw new Error("live replay: the Wasm memory is not bound");
    return new Uint8Array(memory.buffer, ptr, bytes);
  }

  const imports: WasmDeviceImports = {
    memCreate(bytes) {
      const i = recorder.record(K.memCreate, bytes);
      const t0 = timed ? performance.now() : 0;
      const h = d.memCreate(bytes);
      if (timed) recorder.took(i, t0, 0, h);
      if (h > 0) {
        handleBytes.set(h, bytes);
        watch?.sample();
      }
      return h;
    },
    memRelease(handle) {
      const i = recorder.record(K.memRelease, handleBytes.get(handle) ?? 0);
      const t0 = timed ? performance.now() : 0;
      d.memRelease(handle);
      if (timed) recorder.took(i, t0, 0, handle);
      handleBytes.delete(handle);
    },
    addressReserve(bytes, alignment) {
      const i = recorder.record(K.addressReserve, bytes);
      const t0 = timed ? performance.now() : 0;
      const va = d.addressReserve(bytes, alignment);
      if (timed) recorder.took(i, t0, va, alignment);
      return va;
    },
    addressFree(va, bytes) {
      const i = recorder.record(K.addressFree, bytes);
      const t0 = timed ? performance.now() : 0;
      d.addressFree(va, bytes);
      if (timed) recorder.took(i, t0, va, -1);
    },
    map(va, bytes, handle, offset) {
      const i = recorder.record(K.map, bytes);
      const t0 = timed ? performance.now() : 0;
      const r = d.tryMap(va, bytes, handle, offset);
      if (timed) recorder.took(i, t0, va, handle);
      return r;
    },
    setAccess(va, bytes) {
      const i = recorder.record(K.setAccess, bytes);
      const t0 = timed ? performance.now() : 0;
      const r = d.trySetAccess(va, bytes);
      if (timed) recorder.took(i, t0, va, -1);
      return r;
    },
    unmap(va, bytes) {
      const i = recorder.record(K.unmap, bytes);
      const t0 = timed ? performance.now() : 0;
      d.unmap(va, bytes);
      if (timed) recorder.took(i, t0, va, -1);
    },
    malloc(bytes) {
      const i = recorder.record(K.malloc, bytes);
      const t0 = timed ? performance.now() : 0;
      const va = d.malloc(bytes);
      if (timed) recorder.took(i, t0, va, -1);
      if (va > 0) {
        mallocBytes.set(va, bytes);
        watch?.sample();
      }
      return va;
    },
    free(va) {
      const i = recorder.record(K.free, mallocBytes.get(va) ?? 0);
      const t0 = timed ? performance.now() : 0;
      d.free(va);
      if (timed) recorder.took(i, t0, va, -1);
      mallocBytes.delete(va);
    },
    copyToHost(va, hostPtr, bytes) {
      const i = recorder.record(K.copyToHost, bytes);
      const t0 = timed ? performance.now() : 0;
      d.copyToHost(va, hostBytes(hostPtr, bytes), bytes);
      if (timed) recorder.took(i, t0, 0, -1);
    },
    copyFromHost(va, hostPtr, bytes) {
      const i = recorder.record(K.copyFromHost, bytes);
      const t0 = timed ? performance.now() : 0;
      d.copyFromHost(va, hostBytes(hostPtr, bytes), bytes);
      if (timed) recorder.took(i, t0, 0, -1);
    },
    memGetInfoFree() {
      const i = recorder.record(K.memGetInfo, 0);
      const t0 = timed ? performance.now() : 0;
      const free = d.memGetInfo().free;
      if (timed) recorder.took(i, t0, 0, -1);
      return free;
    },
    memGetInfoTotal() {
      return d.memGetInfo().total;
    },
    // The host tier: an arena inside the driver, named by offsets (core-sim's device.ts). The
    // driver checks each copy and throws DeviceError on a bad one; hostReserve answers -1 when
    // the host has no memory to pin (or by an injected fault).
    hostReserve(bytes) {
      const i = recorder.record(K.hostReserve, bytes);
      const t0 = timed ? performance.now() : 0;
      const r = d.hostReserve(bytes);
      // the handle column holds the answer (0, or -1 when refused): raw_replay skips a refused one
      if (timed) recorder.took(i, t0, 0, r);
      if (r === 0) arenaBytes = bytes;
      return r;
    },
    copyOut(va, hostOffset, bytes) {
      const i = recorder.record(K.copyOut, bytes);
      const t0 = timed ? performance.now() : 0;
      d.copyOut(va, hostOffset, bytes);
      if (timed) recorder.took(i, t0, va, -1);
    },
    copyIn(hostOffset, va, bytes) {
      const i = recorder.record(K.copyIn, bytes);
      const t0 = timed ? performance.now() : 0;
      d.copyIn(hostOffset, va, bytes);
      if (timed) recorder.took(i, t0, va, -1);
    },
    hostRelease() {
      const i = recorder.record(K.hostRelease, arenaBytes);
      const t0 = timed ? performance.now() : 0;
      d.hostRelease();
      if (timed) recorder.took(i, t0, 0, -1);
      arenaBytes = 0;
    },
    fillPattern(va, bytes, seed) {
      fills++;
      d.fillPattern(va, bytes, seed);
    },
    checkPattern(va, bytes, seed) {
      checks++;
      return d.checkPattern(va, bytes, seed);
    },
  };
  return {
    imports,
    setMemory(m) {
      memory = m;
    },
    patternCalls: () => ({ fills, checks }),
  };
}
