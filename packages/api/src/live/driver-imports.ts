// Binds the Wasm's "device" imports (core-sim's assembly/device/imported.ts lists them) to one
// native-cuda Driver. Each import is exactly one driver call, made as the policy asked: nothing is
// decided here. What this layer adds is bookkeeping the driver API does not hand back per call:
// the recorder's log of (kind, bytes) for every call, the sizes of handles and mallocs (memRelease
// and free name no size, the simulator's log does), and, when asked, the device memory in use
// after every call that takes memory (cuMemGetInfo growth since the replay began).
import type { DeviceImports } from "@lakebed/core-sim";
import { DeviceError, type Driver } from "@lakebed/native-cuda";
import { callKindIndex, type CallRecorder } from "./call-recorder.js";
import type { MemoryWatch } from "./memory-watch.js";

const K = {
  memCreate: callKindIndex("memCreate"),
  memRelease: callKindIndex("memRelease"),
  addressReserve: callKindIndex("addressReserve"),
  addressFree: callKindIndex("addressFree"),
  map: callKindIndex("map"),
  setAccess: callKindIndex("setAccess"),
  unmap: callKindIndex("unmap"),
  malloc: callKindIndex("malloc"),
  free: callKindIndex("free"),
  copyToHost: callKindIndex("copyToHost"),
  copyFromHost: callKindIndex("copyFromHost"),
  memGetInfo: callKindIndex("memGetInfo"),
};

export interface BoundDriver {
  imports: DeviceImports;
  /** the instance's memory, for the copy imports; set once the instance exists */
  setMemory(memory: { readonly buffer: ArrayBuffer }): void;
  /** pattern fills and checks made (data verification; not in the recorded sequence) */
  patternCalls(): { fills: number; checks: number };
}

export function bindDriver(driver: Driver, recorder: CallRecorder, watch?: MemoryWatch): BoundDriver {
  const handleBytes = new Map<number, number>();
  const mallocBytes = new Map<number, number>();
  let memory: { readonly buffer: ArrayBuffer } | null = null;
  let fills = 0;
  let checks = 0;
  const timed = recorder.timed;

  // One recorded driver call; `f` makes it. Recorded before it is made, so a call that throws is in
  // the log as the simulator's (which counts a call before it can fail) is. Timed recorders also
  // keep the operands: the address and handle named, or for memCreate/addressReserve/malloc the
  // ones the driver returned (`result`); for addressReserve the handle column holds the alignment.
  function call<T extends number | void>(kind: number, bytes: number, f: () => T, va = 0, handle = -1, result?: "va" | "handle"): T {
    const i = recorder.record(kind, bytes);
    if (!timed) return f();
    const t0 = performance.now();
    const r = f();
    recorder.took(i, (performance.now() - t0) * 1000);
    if (result === "va") recorder.operands(i, r as number, handle);
    else if (result === "handle") recorder.operands(i, 0, r as number);
    else recorder.operands(i, va, handle);
    return r;
  }

  /**
   * A map or setAccess the policy can undo: 0 when it was done, -1 when the driver refused it for
   * want of memory or by an injected fault (the policy then rolls its operation back and reports out
   * of memory). Any other failure is a bug or a broken driver and unwinds the replay.
   */
  function refusable(f: () => void): number {
    try {
      f();
      return 0;
    } catch (e) {
      if (e instanceof DeviceError && (e.code === "INJECTED" || e.code === "OUT_OF_MEMORY" || e.driverError === "CUDA_ERROR_OUT_OF_MEMORY")) return -1;
      throw e;
    }
  }

  function hostBytes(ptr: number, bytes: number): Uint8Array {
    if (!memory) throw new Error("live replay: the Wasm memory is not bound");
    return new Uint8Array(memory.buffer, ptr, bytes);
  }

  const imports: DeviceImports = {
    memCreate(bytes) {
      const h = call(K.memCreate, bytes, () => driver.memCreate(bytes), 0, -1, "handle");
      if (h > 0) {
        handleBytes.set(h, bytes);
        watch?.sample();
      }
      return h;
    },
    memRelease(handle) {
      call(K.memRelease, handleBytes.get(handle) ?? 0, () => driver.memRelease(handle), 0, handle);
      handleBytes.delete(handle);
    },
    addressReserve(bytes, alignment) {
      return call(K.addressReserve, bytes, () => driver.addressReserve(bytes, alignment), 0, alignment, "va");
    },
    addressFree(va, bytes) {
      call(K.addressFree, bytes, () => driver.addressFree(va, bytes), va);
    },
    map(va, bytes, handle, offset) {
      return refusable(() => call(K.map, bytes, () => driver.map(va, bytes, handle, offset), va, handle));
    },
    setAccess(va, bytes) {
      return refusable(() => call(K.setAccess, bytes, () => driver.setAccess(va, bytes), va));
    },
    unmap(va, bytes) {
      call(K.unmap, bytes, () => driver.unmap(va, bytes), va);
    },
    malloc(bytes) {
      const va = call(K.malloc, bytes, () => driver.malloc(bytes), 0, -1, "va");
      if (va > 0) {
        mallocBytes.set(va, bytes);
        watch?.sample();
      }
      return va;
    },
    free(va) {
      call(K.free, mallocBytes.get(va) ?? 0, () => driver.free(va), va);
      mallocBytes.delete(va);
    },
    copyToHost(va, hostPtr, bytes) {
      call(K.copyToHost, bytes, () => driver.copyToHost(va, hostBytes(hostPtr, bytes)));
    },
    copyFromHost(va, hostPtr, bytes) {
      call(K.copyFromHost, bytes, () => driver.copyFromHost(va, hostBytes(hostPtr, bytes)));
    },
    memGetInfoFree() {
      return call(K.memGetInfo, 0, () => driver.memGetInfo().free);
    },
    memGetInfoTotal() {
      return driver.memGetInfo().total;
    },
    fillPattern(va, bytes, seed) {
      fills++;
      driver.fillPattern(va, bytes, seed);
    },
    checkPattern(va, bytes, seed) {
      checks++;
      return driver.checkPattern(va, bytes, seed);
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
