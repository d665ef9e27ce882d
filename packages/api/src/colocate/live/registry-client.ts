// A tenant's side of the share registry (share-registry.ts): request, then the one reply.
import { FD_BATCH, recvMessage, sendMessage, shareSockets } from "@lakebed/native-cuda";
import type { RegistryReply, RegistryRequest } from "./registry-protocol.js";
import type { RegistryStats } from "./share-registry.js";

export class RegistryRefused extends Error {
  override readonly name = "RegistryRefused";
}

export class RegistryClient {
  private constructor(readonly fd: number) {}

  /** Connects and waits for the registry's welcome; RegistryRefused when it refused this peer. */
  static connect(path: string): RegistryClient {
    const fd = shareSockets().connect(path);
    const client = new RegistryClient(fd);
    const first = client.next();
    if (first.message.op === "refused") {
      shareSockets().close(fd);
      throw new RegistryRefused(`the share registry refused this process: ${first.message.why}`);
    }
    if (first.message.op !== "welcome") throw new Error(`the share registry said ${first.message.op} first`);
    return client;
  }

  /**
   * For keys (at most FD_BATCH): `have`, each key with a descriptor this process now owns (import
   * it, then close it); `publish`, the keys this process must create and publish; `pending`, keys
   * another tenant is publishing now.
   */
  acquire(keys: string[], bytes: number): { have: Map<string, number>; publish: string[]; pending: string[] } {
    if (keys.length > FD_BATCH) throw new Error(`acquire ${keys.length} keys: at most ${FD_BATCH} a message`);
    const { message, fds } = this.request({ op: "acquire", keys, bytes });
    if (message.op !== "acquired") throw new Error(`share registry: ${describe(message)}`);
    if (fds.length !== message.have.length) throw new Error(`share registry sent ${fds.length} descriptors for ${message.have.length} keys`);
    return { have: new Map(message.have.map((k, i) => [k, fds[i]])), publish: message.publish, pending: message.pending };
  }

  /** Hands the registry descriptors of chunks this process made (it keeps its own handles). */
  publish(keys: string[], fds: number[], bytes: number): void {
    const { message } = this.request({ op: "publish", keys, bytes }, fds);
    if (message.op !== "published") throw new Error(`share registry: ${describe(message)}`);
  }

  release(keys: string[]): void {
    const { message } = this.request({ op: "release", keys });
    if (message.op !== "released") throw new Error(`share registry: ${describe(message)}`);
  }

  /** The registry's counts, and the holders of `keys` (at most FD_BATCH). */
  stats(keys?: string[]): RegistryStats {
    if (keys !== undefined && keys.length > FD_BATCH) throw new Error(`stats of ${keys.length} keys: at most ${FD_BATCH} a message`);
    const { message } = this.request(keys === undefined ? { op: "stats" } : { op: "stats", keys });
    if (message.op !== "stats") throw new Error(`share registry: ${describe(message)}`);
    return message.stats;
  }

  /** Stops the registry (it closes every descriptor it holds); its last stats. */
  shutdown(): RegistryStats {
    const { message } = this.request({ op: "shutdown" });
    if (message.op !== "stats") throw new Error(`share registry: ${describe(message)}`);
    shareSockets().close(this.fd);
    return message.stats;
  }

  close(): void {
    shareSockets().close(this.fd);
  }

  private request(message: RegistryRequest, fds: number[] = []): { message: RegistryReply; fds: number[] } {
    sendMessage(this.fd, message, fds);
    return this.next();
  }

  private next(): { message: RegistryReply; fds: number[] } {
    const got = recvMessage<RegistryReply>(this.fd);
    if (got === null) throw new Error("the share registry closed the connection");
    return got;
  }
}

function describe(m: RegistryReply): string {
  return m.op === "error" || m.op === "refused" ? m.why : `unexpected ${m.op}`;
}
