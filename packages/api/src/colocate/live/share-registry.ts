// The share registry: one process per machine (per scenario run) that owns every shared chunk's
// file descriptor and never maps one (GMS-style: it opens no driver at all), so a chunk outlives
// the process that published it. Tenants connect over a Unix SOCK_SEQPACKET socket; the peer's uid
// (SO_PEERCRED, read by the kernel at connect) is checked before anything is sent to it. A tenant
// asks for the keys (content digests) of its read-only chunks; for each key the registry either
// sends the descriptor (SCM_RIGHTS, at most FD_BATCH a message: Sirius' 128), or tells it to publish
// (it is the first), or says another tenant is publishing it now (ask again).
//
// References follow socket lifetime: a tenant holds a reference to each key it published or was
// sent; when its socket closes (exit, crash, SIGKILL: the kernel closes it), its references go, and
// a key nobody holds any more has its descriptor closed. The memory itself goes when the last
// mapping and the last handle (in any process) go: the driver's rule, not the registry's.
//
//   keys:    key -> { fd, bytes, holders: set of client sockets }
//   pending: key -> the client publishing it
//
// INV-REG-1  a key in `keys` has holders.size > 0 and its fd open; a key nobody holds is closed
//            and gone at once.
// INV-REG-2  a key is in at most one of keys, pending.
// INV-REG-3  every holder and publisher is a connected client; a closed client holds nothing.
import { FD_BATCH, POLLIN, recvMessage, sendMessage, shareSockets } from "@lakebed/native-cuda";
import type { RegistryReply, RegistryRequest } from "./registry-protocol.js";

export interface RegistryOptions {
  /** socket address: '@name' (abstract namespace) or a path */
  path: string;
  /** the uid a peer must have (default: this process's) */
  allowUid?: number;
  /** called once listening */
  onReady?(): void;
}

export interface RegistryStats {
  clients: number;
  keys: number;
  /** descriptors the registry holds open (one per key) */
  fdsHeld: number;
  pending: number;
  /** how many keys have each number of holders ({"6": 126}: 126 keys held by 6 tenants each) */
  holderCounts: Record<string, number>;
  /** holders of each key the stats request named (a key the registry does not hold: 0) */
  holders: Record<string, number>;
  /** peers refused by the uid check */
  refused: number;
}

/** A request of this protocol: an op it knows, and keys (strings) and bytes where the op has them. */
function wellFormed(m: unknown): m is RegistryRequest {
  if (typeof m !== "object" || m === null) return false;
  const r = m as { op?: unknown; keys?: unknown; bytes?: unknown };
  const keysOk = Array.isArray(r.keys) && r.keys.every((k) => typeof k === "string");
  switch (r.op) {
    case "acquire":
    case "publish":
      return keysOk && typeof r.bytes === "number";
    case "release":
      return keysOk;
    case "stats":
    case "shutdown":
      return true;
    default:
      return false;
  }
}

interface Client {
  fd: number;
  pid: number;
  uid: number;
  holds: Set<string>;
}

/** Serves until a client asks for shutdown; returns the last stats. Blocks the thread (poll). */
export function serveRegistry(options: RegistryOptions): RegistryStats {
  const s = shareSockets();
  const allowUid = options.allowUid ?? process.getuid!();
  const listenFd = s.listen(options.path);
  const clients = new Map<number, Client>();
  const keys = new Map<string, { fd: number; bytes: number; holders: Set<number> }>();
  const pending = new Map<string, number>();
  let refused = 0;
  let lastStats: RegistryStats | null = null;

  const stats = (named: string[] = []): RegistryStats => {
    const holderCounts: Record<string, number> = {};
    for (const v of keys.values()) holderCounts[v.holders.size] = (holderCounts[v.holders.size] ?? 0) + 1;
    return {
      clients: clients.size,
      keys: keys.size,
      fdsHeld: keys.size,
      pending: pending.size,
      holderCounts,
      holders: Object.fromEntries(named.map((k) => [k, keys.get(k)?.holders.size ?? 0])),
      refused,
    };
  };
  const reply = (c: Client, message: RegistryReply, fds: number[] = []) => sendMessage(c.fd, message, fds);
  const unhold = (c: Client, key: string) => {
    c.holds.delete(key);
    const entry = keys.get(key);
    if (!entry) return;
    entry.holders.delete(c.fd);
    if (entry.holders.size === 0) {
      s.close(entry.fd); // INV-REG-1: nobody holds it, the registry lets it go
      keys.delete(key);
    }
  };
  const drop = (c: Client) => {
    for (const key of [...c.holds]) unhold(c, key);
    for (const [key, by] of pending) if (by === c.fd) pending.delete(key);
    clients.delete(c.fd);
    s.close(c.fd);
  };

  options.onReady?.();
  for (;;) {
    const fds = [listenFd, ...clients.keys()];
    const events = s.poll(fds, -1);
    if (events[0] & POLLIN) {
      const peer = s.accept(listenFd);
      if (peer.uid !== allowUid) {
        // nothing is exported to a peer of another user
        refused++;
        try {
          sendMessage(peer.fd, { op: "refused", why: `uid ${peer.uid} is not ${allowUid}` } satisfies RegistryReply);
        } catch {
          // it may have gone already
        }
        s.close(peer.fd);
      } else {
        const c: Client = { fd: peer.fd, pid: peer.pid, uid: peer.uid, holds: new Set() };
        clients.set(peer.fd, c);
        try {
          reply(c, { op: "welcome", pid: process.pid });
        } catch {
          drop(c); // gone before the welcome
        }
      }
    }
    for (let i = 1; i < fds.length; i++) {
      if (events[i] === 0) continue;
      const c = clients.get(fds[i]);
      if (!c) continue;
      let got: ReturnType<typeof recvMessage<RegistryRequest>>;
      try {
        got = recvMessage<RegistryRequest>(c.fd);
      } catch {
        got = null; // ECONNRESET (the peer died), or not a message: the client goes, the registry stays
      }
      if (got === null) {
        drop(c);
        continue;
      }
      if (!wellFormed(got.message)) {
        for (const fd of got.fds) s.close(fd);
        drop(c); // not this protocol: nothing of it is kept
        continue;
      }
      try {
        if (serve(c, got.message, got.fds)) return lastStats!;
      } catch {
        // EPIPE: it died while being answered (every descriptor it sent is kept or closed by
        // then). Its references go with it; the registry stays.
        if (clients.has(c.fd)) drop(c);
      }
    }
  }

  /** One request; true after a shutdown. */
  function serve(c: Client, m: RegistryRequest, receivedFds: number[]): boolean {
    const got = { message: m, fds: receivedFds };
    {
      if (m.op === "acquire") {
        for (const fd of got.fds) s.close(fd);
        if (m.keys.length > FD_BATCH) {
          reply(c, { op: "error", why: `${m.keys.length} keys in one acquire: at most ${FD_BATCH}` });
          return false;
        }
        const mismatch = m.keys.find((key) => keys.has(key) && keys.get(key)!.bytes !== m.bytes);
        if (mismatch !== undefined) {
          reply(c, { op: "error", why: `key ${mismatch.slice(0, 16)} holds ${keys.get(mismatch)!.bytes} bytes, not ${m.bytes}` });
          return false;
        }
        const have: string[] = [];
        const haveFds: number[] = [];
        const publish: string[] = [];
        const wait: string[] = [];
        for (const key of new Set(m.keys)) {
          const entry = keys.get(key);
          if (entry) {
            entry.holders.add(c.fd);
            c.holds.add(key);
            have.push(key);
            haveFds.push(entry.fd);
          } else if (pending.has(key)) {
            wait.push(key);
          } else {
            pending.set(key, c.fd);
            publish.push(key);
          }
        }
        // the kernel puts copies of the registry's descriptors in the tenant; the registry keeps its own
        reply(c, { op: "acquired", have, publish, pending: wait }, haveFds);
      } else if (m.op === "publish") {
        if (m.keys.length !== got.fds.length) {
          for (const fd of got.fds) s.close(fd);
          reply(c, { op: "error", why: `${m.keys.length} keys with ${got.fds.length} descriptors` });
          return false;
        }
        let wrong = "";
        m.keys.forEach((key, j) => {
          if (pending.get(key) !== c.fd) {
            s.close(got!.fds[j]);
            wrong ||= `key ${key.slice(0, 16)} was not given to this tenant to publish`;
            return;
          }
          pending.delete(key);
          keys.set(key, { fd: got!.fds[j], bytes: m.bytes, holders: new Set([c.fd]) });
          c.holds.add(key);
        });
        reply(c, wrong ? { op: "error", why: wrong } : { op: "published", count: m.keys.length });
      } else if (m.op === "release") {
        for (const key of m.keys) if (c.holds.has(key)) unhold(c, key);
        reply(c, { op: "released" });
      } else if (m.op === "stats") {
        reply(c, { op: "stats", stats: stats(m.keys) });
      } else if (m.op === "shutdown") {
        const last = stats();
        lastStats = last;
        reply(c, { op: "stats", stats: last });
        for (const client of [...clients.values()]) drop(client);
        for (const entry of keys.values()) s.close(entry.fd);
        s.close(listenFd);
        return true;
      } else {
        reply(c, { op: "error", why: `unknown request ${JSON.stringify((m as { op: unknown }).op)}` });
      }
    }
    return false;
  }
}
