// The messages between a tenant and the share registry (share-registry.ts), one JSON object a
// SOCK_SEQPACKET message, descriptors riding on `acquired` (the keys in `have`, in order) and
// `publish` (the keys, in order), at most FD_BATCH (128) of them a message.
import type { RegistryStats } from "./share-registry.js";

export type RegistryRequest =
  | { op: "acquire"; keys: string[]; bytes: number }
  | { op: "publish"; keys: string[]; bytes: number }
  | { op: "release"; keys: string[] }
  /** keys: the ones whose holders the reply names (at most FD_BATCH; a reply names no more, so
   * that it fits one message whatever the registry holds) */
  | { op: "stats"; keys?: string[] }
  | { op: "shutdown" };

export type RegistryReply =
  | { op: "welcome"; pid: number }
  | { op: "refused"; why: string }
  | { op: "acquired"; have: string[]; publish: string[]; pending: string[] }
  | { op: "published"; count: number }
  | { op: "released" }
  | { op: "stats"; stats: RegistryStats }
  | { op: "error"; why: string };
