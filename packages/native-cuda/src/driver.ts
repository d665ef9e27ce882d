// The Driver: one method per device call, mirroring the CUDA driver API, over host memory or a
// GPU. A policy (compiled to WebAssembly in @lakebed/core-sim) binds its device imports to these
// methods; the policy never lives here or in C++.
import { type CallKind, isCallKind } from "./call-kinds.js";
import { DeviceError, invalid } from "./errors.js";
import { loadAddon } from "./loader.js";
import type { NativeDriverObject } from "./native-binding.js";
import { ArgChecker } from "./validate.js";

export type DriverKind = "host" | "cuda";

/** What memCreate, addressReserve and malloc return when the device is out of memory. */
export const OOM = -1;

/** Every Nth call of a kind fails as the driver would (OOM for memCreate/addressReserve/malloc). */
export type FailEvery =
  | Partial<Record<CallKind, number>>
  | { call: CallKind; n: number }
  | ReadonlyArray<{ call: CallKind; n: number }>;

export interface OpenDriverOptions {
  /** Bytes of physical memory (handles + mallocs) this driver may hold; beyond it memCreate and
   * malloc return OOM. Default: no limit but the device's own. */
  capacity?: number;
  /** CUDA device ordinal (cuda only). Default 0. */
  device?: number;
  /** Fault injection, for testing error paths. */
  failEvery?: FailEvery;
}

export interface MemInfo {
  /** free bytes (within the capacity, when one is set) */
  free: number;
  /** total bytes (the capacity, when one is set) */
  total: number;
}

export interface DriverInfo {
  kind: DriverKind;
  /** "NVIDIA H100 80GB HBM3 (device 0, CUDA driver 13.0)" or "host memory (memfd + mmap)" */
  description: string;
  granularity: number;
  /** 0 when unlimited */
  capacity: number;
  closed: boolean;
}

type PerCall = Record<CallKind, number>;

export interface DriverCounters {
  liveHandles: number;
  liveReservations: number;
  liveMappings: number;
  liveMallocs: number;
  /** bytes of unreleased handles */
  handleBytes: number;
  /** bytes of physical memory held: handles (released ones too, while still mapped) + mallocs */
  physicalBytes: number;
  reservedBytes: number;
  mappedBytes: number;
  mallocBytes: number;
  /** bytes of the host tier's pinned arena held now (0: none) */
  hostArenaBytes: number;
  /** calls that reached the driver layer, per kind (JS-rejected arguments are not counted) */
  calls: PerCall;
  /** calls that did not succeed (including OOM results), per kind */
  failures: PerCall;
  ooms: PerCall;
  injected: PerCall;
}

export interface LeakReport {
  /** true when this driver holds nothing */
  clean: boolean;
  handles: Array<{ handle: number; bytes: number; mappings: number; released: boolean }>;
  reservations: Array<{ va: number; bytes: number; mappings: number }>;
  mappings: Array<{ va: number; bytes: number; handle: number; offset: number; access: boolean }>;
  mallocs: Array<{ va: number; bytes: number }>;
  /** the host tier's arena, when one is still held (else 0) */
  hostArenaBytes: number;
}

export interface TeardownReport {
  unmapped: number;
  addressesFreed: number;
  handlesReleased: number;
  mallocsFreed: number;
  /** the size of the host arena teardown released (0: none was held) */
  hostArenaBytes: number;
  /** driver calls that failed during teardown (the records are dropped regardless) */
  errors: string[];
}

/**
 * The device calls straight to the addon, without the JS argument checks: for hot paths that make
 * one call per policy request (a live replay's Wasm imports), where checking in JS and again in
 * the addon doubles the fixed cost of a sub-microsecond driver call. Nothing is trusted: the addon
 * checks every argument itself (a number that is an integer below 2^53; then DriverCore: the
 * granularity, live handles, reservations and mappings, offset 0) and refuses a bad one with the
 * same DeviceError, code INVALID, naming the driver, the call and what is wrong, before any driver
 * call. Every argument is required. tryMap and trySetAccess answer OOM (-1) instead of throwing
 * when the driver refused for want of memory or by an injected fault, and 0 when done.
 */
export interface DirectCalls {
  memCreate(bytes: number): number;
  memRelease(handle: number): void;
  addressReserve(bytes: number, alignment: number): number;
  addressFree(va: number, bytes: number): void;
  tryMap(va: number, bytes: number, handle: number, offset: number): number;
  trySetAccess(va: number, bytes: number): number;
  unmap(va: number, bytes: number): void;
  malloc(bytes: number): number;
  free(va: number): void;
  copyToHost(va: number, dst: Uint8Array, bytes: number): void;
  copyFromHost(va: number, src: Uint8Array, bytes: number): void;
  memGetInfo(): MemInfo;
  fillPattern(va: number, bytes: number, seed: number): void;
  checkPattern(va: number, bytes: number, seed: number): number;
  /** The host tier (Driver.hostReserve and the rest); hostReserve answers 0, or OOM (-1) when refused. */
  hostReserve(bytes: number): number;
  copyOut(va: number, hostOffset: number, bytes: number): void;
  copyIn(hostOffset: number, va: number, bytes: number): void;
  hostRelease(): void;
  /** Reads up to four numbers as a device call reads its arguments, and does nothing else: what
   * one call into the addon costs at least. */
  nop(a?: number, b?: number, c?: number, d?: number): void;
}

/** Per-call timing inside the native layer (Driver.timeCalls): one entry per device call that
 * reached DriverCore (the addon's own argument refusals do not), oldest first. */
export interface NativeCallTimes {
  /** each call's kind, as an index into CALL_KINDS */
  kinds: Uint8Array;
  /** the whole DriverCore operation: checks, fault injection, the driver call, the tables (ns) */
  coreNs: Float64Array;
  /** the driver function alone: the cuMem* call, or the host driver's system calls (ns); -1 when
   * the call was refused before the driver */
  driverNs: Float64Array;
  /** what one clock read costs here (ns): each figure above holds about two reads' worth */
  clockReadNs: number;
}

/**
 * One open driver. Sizes are bytes; addresses (va) are plain numbers, exact below 2^53. Sizes
 * given to memCreate/addressReserve/map/setAccess/unmap, and mapped addresses, are multiples of
 * granularity(). Every failure other than OOM throws DeviceError.
 */
export interface Driver {
  readonly kind: DriverKind;
  /** cuMemGetAllocationGranularity: 2 MiB on an H100 and on host */
  granularity(): number;
  /** cuMemCreate: a physical handle id (> 0), or OOM */
  memCreate(bytes: number): number;
  /** cuMemRelease: legal while mapped; the memory goes with its last mapping */
  memRelease(handle: number): void;
  /** cuMemAddressReserve: the base va of a new reservation, or OOM. alignment 0 = default */
  addressReserve(bytes: number, alignment?: number): number;
  /** cuMemAddressFree: the exact (va, bytes) reserved, once nothing is mapped in it */
  addressFree(va: number, bytes: number): void;
  /** cuMemMap: the whole handle at [va, va+bytes), inside one reservation and not yet mapped.
   * bytes must equal the handle's size and offset must be 0: an H100 on driver 580 answers
   * CUDA_ERROR_NOT_SUPPORTED to a map of part of a handle or at an offset, so both drivers refuse
   * them alike (INVALID), and what works on host memory works on the GPU. */
  map(va: number, bytes: number, handle: number, offset?: number): void;
  /** cuMemSetAccess read-write: the range must be exactly covered by whole mappings */
  setAccess(va: number, bytes: number): void;
  /** cuMemUnmap: the range must be exactly covered by whole mappings; the reservation stays */
  unmap(va: number, bytes: number): void;
  /** cuMemAlloc: plain device memory, or OOM */
  malloc(bytes: number): number;
  /** cuMemFree */
  free(va: number): void;
  /** cuMemcpyDtoH into dst (bytes defaults to dst's length); the range must be accessible */
  copyToHost(va: number, dst: ArrayBufferView, bytes?: number): void;
  /** cuMemcpyHtoD from src (bytes defaults to src's length); the range must be accessible */
  copyFromHost(va: number, src: ArrayBufferView, bytes?: number): void;
  /** cuMemsetD8 */
  memset(va: number, value: number, bytes: number): void;
  /** cuMemGetInfo */
  memGetInfo(): MemInfo;
  /** Writes the seeded check pattern at probes of the range: its first and last bytes and
   * across every granule boundary (so each 2 MiB chunk of a stitched range). */
  fillPattern(va: number, bytes: number, seed: number): void;
  /** Reads the probes back: how many bytes differ from the pattern (0 = intact). */
  checkPattern(va: number, bytes: number, seed: number): number;
  /**
   * The host tier: `bytes` of pinned host memory as this driver's one arena (cuMemHostAlloc; on
   * host memory an anonymous mmap, mlock'ed when RLIMIT_MEMLOCK allows). False when the host
   * refused for want of memory. One arena at a time: a call while one is held throws.
   */
  hostReserve(bytes: number): boolean;
  /** cuMemcpyDtoH of device [va, va+bytes) into the arena at hostOffset; the device range must be
   * mapped with access (or inside a malloc) and the arena range inside the arena. */
  copyOut(va: number, hostOffset: number, bytes: number): void;
  /** cuMemcpyHtoD of the arena at hostOffset into device [va, va+bytes); the same checks. */
  copyIn(hostOffset: number, va: number, bytes: number): void;
  /** cuMemFreeHost: the arena back (teardown releases one left behind). */
  hostRelease(): void;
  /**
   * Sharing chunks between processes (colocate's live half). memCreateShareable: memCreate of a
   * chunk that can be exported (cuMemCreate with POSIX_FILE_DESCRIPTOR handles; a memfd on host
   * memory); counted as memCreate. OOM (-1) as memCreate.
   */
  memCreateShareable(bytes: number): number;
  /** cuMemExportToShareableHandle: a new file descriptor for the chunk, the caller's to send over
   * a Unix socket (share.send) and close; driverNs: the driver function's time alone. Only a
   * shareable or imported handle can be exported. */
  exportHandle(handle: number): { fd: number; driverNs: number };
  /** cuMemImportFromShareableHandle of a received descriptor of a `bytes` chunk: a handle of this
   * driver (map it, release it as any other). Close `fd` right after. */
  importHandle(fd: number, bytes: number): { handle: number; driverNs: number };
  /** cuMemSetAccess with PROT_READ (host: mprotect PROT_READ), counted as setAccess: reads are
   * allowed; copyFromHost, memset, fillPattern and copyIn into it are refused (INVALID) before the
   * driver, and the driver would refuse them too (writeThroughReadOnly shows it). */
  setAccessReadOnly(va: number, bytes: number): void;
  /** The write the checks refuse, made anyway on a read-only range, to show the memory system
   * refuses it: host: a CPU store, which kills the process with SIGSEGV (call it only in a
   * process meant to die); cuda: cuMemsetD8, which the driver refuses (DeviceError DRIVER). */
  writeThroughReadOnly(va: number, bytes: number): void;
  info(): DriverInfo;
  counters(): DriverCounters;
  /** Everything this driver still holds. */
  leakReport(): LeakReport;
  /** null when the driver's tables keep their invariants, else the first broken one. */
  isValid(): string | null;
  /** Changes fault injection; n = 0 turns it off for that call. Restarts that call's count. */
  failEvery(call: CallKind, n: number): void;
  /** The device calls without the JS argument checks; the addon's own checks refuse bad ones. */
  readonly direct: DirectCalls;
  /** Per-call timing inside the native layer, off by default; turning it on starts an empty log. */
  timeCalls(on: boolean): void;
  /** The calls timed since timing went on or since the last take; forgets them. */
  takeCallTimes(): NativeCallTimes;
  /** Releases everything in reverse order (mappings, reservations, handles, mallocs) and closes
   * the driver. Idempotent. Also runs by itself at process or worker exit. */
  teardown(): TeardownReport;
}

class NativeDriver implements Driver {
  readonly kind: DriverKind;
  private readonly granularityBytes: number;
  private readonly check: ArgChecker;

  constructor(
    kind: DriverKind,
    private readonly native: NativeDriverObject,
  ) {
    this.kind = kind;
    this.granularityBytes = native.info().granularity;
    this.check = new ArgChecker(kind, this.granularityBytes);
  }

  granularity(): number {
    return this.granularityBytes;
  }

  memCreate(bytes: number): number {
    return this.native.memCreate(this.check.granular("memCreate", "bytes", bytes));
  }

  memRelease(handle: number): void {
    this.native.memRelease(this.check.positive("memRelease", "handle", handle));
  }

  addressReserve(bytes: number, alignment = 0): number {
    const c = this.check;
    return this.native.addressReserve(
      c.granular("addressReserve", "bytes", bytes),
      c.alignment("addressReserve", alignment),
    );
  }

  addressFree(va: number, bytes: number): void {
    const c = this.check;
    this.native.addressFree(c.alignedVa("addressFree", va), c.granular("addressFree", "bytes", bytes));
  }

  map(va: number, bytes: number, handle: number, offset = 0): void {
    const c = this.check;
    const offsetBytes = c.integer("map", "offset", offset);
    if (offsetBytes !== 0) {
      throw invalid(this.kind, "map", "offset must be 0 (cuMemMap maps a handle from its start)");
    }
    this.native.map(
      c.alignedVa("map", va),
      c.granular("map", "bytes", bytes),
      c.positive("map", "handle", handle),
      offsetBytes,
    );
  }

  setAccess(va: number, bytes: number): void {
    const c = this.check;
    this.native.setAccess(c.alignedVa("setAccess", va), c.granular("setAccess", "bytes", bytes));
  }

  unmap(va: number, bytes: number): void {
    const c = this.check;
    this.native.unmap(c.alignedVa("unmap", va), c.granular("unmap", "bytes", bytes));
  }

  malloc(bytes: number): number {
    return this.native.malloc(this.check.positive("malloc", "bytes", bytes));
  }

  free(va: number): void {
    this.native.free(this.check.va("free", va));
  }

  copyToHost(va: number, dst: ArrayBufferView, bytes?: number): void {
    const b = this.check.buffer("copyToHost", dst, bytes);
    this.native.copyToHost(this.check.va("copyToHost", va), b.view, b.bytes);
  }

  copyFromHost(va: number, src: ArrayBufferView, bytes?: number): void {
    const b = this.check.buffer("copyFromHost", src, bytes);
    this.native.copyFromHost(this.check.va("copyFromHost", va), b.view, b.bytes);
  }

  memset(va: number, value: number, bytes: number): void {
    const c = this.check;
    const byte = c.integer("memset", "value", value);
    if (byte > 255) throw invalid(this.kind, "memset", "value must be a byte (0..255)");
    this.native.memset(c.va("memset", va), byte, c.positive("memset", "bytes", bytes));
  }

  memGetInfo(): MemInfo {
    return this.native.memGetInfo();
  }

  fillPattern(va: number, bytes: number, seed: number): void {
    const c = this.check;
    this.native.fillPattern(c.va("fillPattern", va), c.positive("fillPattern", "bytes", bytes), c.integer("fillPattern", "seed", seed));
  }

  checkPattern(va: number, bytes: number, seed: number): number {
    const c = this.check;
    return this.native.checkPattern(c.va("checkPattern", va), c.positive("checkPattern", "bytes", bytes), c.integer("checkPattern", "seed", seed));
  }

  hostReserve(bytes: number): boolean {
    return this.native.hostReserve(this.check.positive("hostReserve", "bytes", bytes)) === 0;
  }

  copyOut(va: number, hostOffset: number, bytes: number): void {
    const c = this.check;
    this.native.copyOut(c.va("copyOut", va), c.integer("copyOut", "hostOffset", hostOffset), c.positive("copyOut", "bytes", bytes));
  }

  copyIn(hostOffset: number, va: number, bytes: number): void {
    const c = this.check;
    this.native.copyIn(c.integer("copyIn", "hostOffset", hostOffset), c.va("copyIn", va), c.positive("copyIn", "bytes", bytes));
  }

  hostRelease(): void {
    this.native.hostRelease();
  }

  memCreateShareable(bytes: number): number {
    return this.native.memCreateShareable(this.check.granular("memCreateShareable", "bytes", bytes));
  }

  exportHandle(handle: number): { fd: number; driverNs: number } {
    return this.native.exportHandle(this.check.positive("exportHandle", "handle", handle));
  }

  importHandle(fd: number, bytes: number): { handle: number; driverNs: number } {
    return this.native.importHandle(this.check.integer("importHandle", "fd", fd), this.check.granular("importHandle", "bytes", bytes));
  }

  setAccessReadOnly(va: number, bytes: number): void {
    const c = this.check;
    this.native.setAccessReadOnly(c.alignedVa("setAccessReadOnly", va), c.granular("setAccessReadOnly", "bytes", bytes));
  }

  writeThroughReadOnly(va: number, bytes: number): void {
    const c = this.check;
    this.native.writeThroughReadOnly(c.alignedVa("writeThroughReadOnly", va), c.granular("writeThroughReadOnly", "bytes", bytes));
  }

  info(): DriverInfo {
    return this.native.info();
  }

  counters(): DriverCounters {
    return this.native.counters() as DriverCounters;
  }

  leakReport(): LeakReport {
    return this.native.leakReport() as LeakReport;
  }

  isValid(): string | null {
    return this.native.isValid();
  }

  failEvery(call: CallKind, n: number): void {
    if (!isCallKind(call)) throw invalid(this.kind, "failEvery", `'${String(call)}' is no call kind`);
    this.native.setFailEvery(call, this.check.integer("failEvery", "n", n));
  }

  get direct(): DirectCalls {
    return this.native;
  }

  timeCalls(on: boolean): void {
    this.native.setTiming(on === true);
  }

  takeCallTimes(): NativeCallTimes {
    const flat = this.native.takeTimings();
    const n = flat.length / 3;
    const times: NativeCallTimes = {
      kinds: new Uint8Array(n),
      coreNs: new Float64Array(n),
      driverNs: new Float64Array(n),
      clockReadNs: this.native.timingClockNs(),
    };
    for (let i = 0; i < n; i++) {
      times.kinds[i] = flat[3 * i];
      times.coreNs[i] = flat[3 * i + 1];
      times.driverNs[i] = flat[3 * i + 2];
    }
    return times;
  }

  teardown(): TeardownReport {
    return this.native.teardown() as TeardownReport;
  }
}

function failEveryEntries(spec: FailEvery): Array<[string, unknown]> {
  if (Array.isArray(spec)) return spec.map((e: { call: string; n: unknown }) => [e.call, e.n]);
  if ("call" in spec && "n" in spec) return [[String(spec.call), spec.n]];
  return Object.entries(spec);
}

/**
 * Opens a driver. 'host' works on any Linux machine; 'cuda' needs an NVIDIA driver and a GPU
 * (doctor() says whether and why not). Throws DeviceError: "UNAVAILABLE" when this kind cannot
 * open here, "LOAD" when the addon is missing, "INVALID" for bad options.
 */
export function openDriver(kind: DriverKind, options: OpenDriverOptions = {}): Driver {
  if (kind !== "host" && kind !== "cuda") {
    throw invalid("native", "open", `driver kind must be 'host' or 'cuda', got ${String(kind)}`);
  }
  const check = new ArgChecker(kind, 1);
  const capacity = check.integer("open", "capacity", options.capacity ?? 0);
  const device = check.integer("open", "device", options.device ?? 0);
  const entries = options.failEvery ? failEveryEntries(options.failEvery) : [];
  for (const [call, n] of entries) {
    if (!isCallKind(call)) throw invalid(kind, "open", `failEvery names '${call}', which is no call kind`);
    check.integer("open", `failEvery.${call}`, n);
  }
  const { binding } = loadAddon();
  const driver = new NativeDriver(kind, new binding.Driver(kind, capacity, device));
  for (const [call, n] of entries) driver.failEvery(call as CallKind, n as number);
  return driver;
}


