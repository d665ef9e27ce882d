// One tenant's Device, bound to the shared pool: the Wasm "device" imports of the tenant's own
// core-sim instance (its policy runs on the ImportedDevice, assembly/device/imported.ts), answered
// from the pool's books instead of a driver. memCreate and malloc claim chunks through the
// colocation strategy (which may take them from another tenant), memRelease and free give them
// back, map and setAccess map them writable for this tenant; each call is charged what the
// strategy says it costs. Virtual addresses are not scarce here: each tenant has its own range.
import type { DeviceImports } from "@lakebed/core-sim";
import { CHUNK_BYTES, type SharedPool } from "./shared-pool.js";
import type { DriverCall } from "./driver-costs.js";

/** What the tenant's calls need from the engine: memory (through the strategy) and a bill. */
export interface TenantHost {
  readonly pool: SharedPool;
  /** n chunks for the tenant (the strategy may hand memory over); null: out of memory */
  acquire(tenant: number, n: number): number[] | null;
  /** the tenant gives chunks back */
  giveBack(tenant: number, chunks: number[]): void;
  /** charges a call to whoever waits on it */
  charge(tenant: number, call: DriverCall, bytes: number, mappings?: number): void;
}

/** Where each tenant's addresses start (a disjoint 2^40-byte range per tenant). */
const VA_SPAN = 2 ** 40;

export function tenantDevice(tenant: number, host: TenantHost, capacityBytes: number): DeviceImports {
  const pool = host.pool;
  const handles = new Map<number, number[]>();
  /** va -> (handle, bytes) of each mapping */
  const mappings = new Map<number, { handle: number; bytes: number }>();
  const mallocs = new Map<number, number[]>();
  let nextHandle = 1;
  let nextVa = VA_SPAN * (tenant + 1);
  const bump = (bytes: number, alignment: number) => {
    const a = Math.max(alignment, CHUNK_BYTES);
    nextVa = Math.ceil(nextVa / a) * a;
    const va = nextVa;
    nextVa += Math.ceil(bytes / CHUNK_BYTES) * CHUNK_BYTES;
    return va;
  };
  const unsupported = (name: string) => () => {
    throw new Error(`colocate: the tenant's policy called ${name}, which the shared pool does not serve`);
  };
  return {
    memCreate(bytes) {
      const chunks = host.acquire(tenant, Math.ceil(bytes / CHUNK_BYTES));
      if (chunks === null) return -1;
      host.charge(tenant, "memCreate", bytes);
      const h = nextHandle++;
      handles.set(h, chunks);
      return h;
    },
    memRelease(handle) {
      const chunks = handles.get(handle);
      if (!chunks) throw new Error(`colocate: memRelease of unknown handle ${handle}`);
      handles.delete(handle);
      host.charge(tenant, "memRelease", chunks.length * CHUNK_BYTES);
      host.giveBack(tenant, chunks);
    },
    addressReserve(bytes, alignment) {
      return bump(bytes, alignment);
    },
    addressFree() {},
    map(va, bytes, handle) {
      const chunks = handles.get(handle);
      if (!chunks) throw new Error(`colocate: map of unknown handle ${handle}`);
      for (const c of chunks) pool.mapWritable(tenant, c);
      mappings.set(va, { handle, bytes });
      host.charge(tenant, "map", bytes);
      return 0;
    },
    setAccess(va, bytes) {
      let p = va;
      let count = 0;
      let size = 0;
      while (p < va + bytes) {
        const m = mappings.get(p);
        if (!m) throw new Error(`colocate: setAccess over an unmapped address`);
        for (const c of handles.get(m.handle)!) pool.write(tenant, c); // the tenant's data goes in from here on
        p += m.bytes;
        size = m.bytes;
        count++;
      }
      host.charge(tenant, "setAccess", size, count);
      return 0;
    },
    unmap(va, bytes) {
      let p = va;
      let count = 0;
      let size = 0;
      while (p < va + bytes) {
        const m = mappings.get(p);
        if (!m) throw new Error(`colocate: unmap of an unmapped address`);
        for (const c of handles.get(m.handle) ?? []) pool.unmap(tenant, c);
        mappings.delete(p);
        p += m.bytes;
        size = m.bytes;
        count++;
      }
      host.charge(tenant, "unmap", size, count);
    },
    malloc(bytes) {
      const chunks = host.acquire(tenant, Math.ceil(bytes / CHUNK_BYTES));
      if (chunks === null) return -1;
      const va = bump(bytes, CHUNK_BYTES);
      for (const c of chunks) {
        pool.mapWritable(tenant, c);
        pool.write(tenant, c);
      }
      mallocs.set(va, chunks);
      host.charge(tenant, "malloc", bytes);
      return va;
    },
    free(va) {
      const chunks = mallocs.get(va);
      if (!chunks) throw new Error(`colocate: free of an address malloc did not give`);
      mallocs.delete(va);
      for (const c of chunks) pool.unmap(tenant, c);
      host.charge(tenant, "free", chunks.length * CHUNK_BYTES);
      host.giveBack(tenant, chunks);
    },
    memGetInfoFree() {
      return pool.freeChunks * CHUNK_BYTES;
    },
    memGetInfoTotal() {
      return capacityBytes;
    },
    copyToHost: unsupported("copyToHost"),
    copyFromHost: unsupported("copyFromHost"),
    fillPattern: unsupported("fillPattern"),
    checkPattern: unsupported("checkPattern"),
  };
}
