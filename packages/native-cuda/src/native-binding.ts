// The shape of what the C++ addon exports (src/native/addon.cc). Private to this package: users
// get the validated Driver from openDriver(), and its device calls without the JS checks as
// Driver.direct (the DirectCalls view of this object).
import type { DeviceError, DeviceErrorDetails } from "./errors.js";

export interface NativeDriverObject {
  memCreate(bytes: number): number;
  memRelease(handle: number): void;
  addressReserve(bytes: number, alignment: number): number;
  addressFree(va: number, bytes: number): void;
  map(va: number, bytes: number, handle: number, offset: number): void;
  /** map, answering -1 (OOM) instead of throwing when refused for want of memory or by an
   * injected fault; 0 when done */
  tryMap(va: number, bytes: number, handle: number, offset: number): number;
  setAccess(va: number, bytes: number): void;
  trySetAccess(va: number, bytes: number): number;
  unmap(va: number, bytes: number): void;
  malloc(bytes: number): number;
  free(va: number): void;
  copyToHost(va: number, dst: ArrayBufferView, bytes: number): void;
  copyFromHost(va: number, src: ArrayBufferView, bytes: number): void;
  memset(va: number, value: number, bytes: number): void;
  memGetInfo(): { free: number; total: number };
  fillPattern(va: number, bytes: number, seed: number): void;
  checkPattern(va: number, bytes: number, seed: number): number;
  /** 0 when the arena was pinned, -1 (OOM) when refused */
  hostReserve(bytes: number): number;
  copyOut(va: number, hostOffset: number, bytes: number): void;
  copyIn(hostOffset: number, va: number, bytes: number): void;
  hostRelease(): void;
  memCreateShareable(bytes: number): number;
  exportHandle(handle: number): { fd: number; driverNs: number };
  importHandle(fd: number, bytes: number): { handle: number; driverNs: number };
  setAccessReadOnly(va: number, bytes: number): void;
  writeThroughReadOnly(va: number, bytes: number): void;
  info(): {
    kind: "host" | "cuda";
    description: string;
    granularity: number;
    capacity: number;
    closed: boolean;
  };
  counters(): unknown;
  leakReport(): unknown;
  isValid(): string | null;
  setFailEvery(call: string, n: number): void;
  teardown(): unknown;
  setTiming(on: boolean): void;
  /** (kind index in callKinds, core ns, driver ns) per call timed since the last take */
  takeTimings(): Float64Array;
  timingClockNs(): number;
  /** reads its arguments as a device call does, and does nothing else */
  nop(a?: number, b?: number, c?: number, d?: number): void;
}

export interface NativeBinding {
  Driver: new (kind: string, capacityBytes: number, device: number) => NativeDriverObject;
  probe(kind: string): { available: boolean; reason: string; devices?: number; driverVersion?: number };
  setErrorClass(cls: new (message: string, details: DeviceErrorDetails) => DeviceError): void;
  /** exit cleanup of every open driver of this thread */
  teardownAll(): void;
  callKinds: readonly string[];
  OOM: number;
  /** Unix sockets with SCM_RIGHTS and shared books (src/native/share_socket.h) */
  share: NativeShare;
}

export interface NativeShare {
  listen(path: string): number;
  accept(fd: number): { fd: number; pid: number; uid: number; gid: number };
  connect(path: string): number;
  send(fd: number, payload: Uint8Array, fds: readonly number[]): void;
  recv(fd: number, maxBytes: number): { payload: Buffer; fds: number[] } | null;
  poll(fds: readonly number[], timeoutMs: number): number[];
  peerCred(fd: number): { pid: number; uid: number; gid: number };
  close(fd: number): void;
  shmCreate(bytes: number): number;
  shmMap(fd: number, bytes: number): ArrayBuffer;
  maxFdsPerMessage: number;
}
