// Unix sockets that carry chunk handles between processes (SCM_RIGHTS), the peer's credentials
// (SO_PEERCRED), and shared books (a memfd mapped in several processes): the addon's `share`
// functions (src/native/share_socket.h), typed, plus the message framing every user of them needs.
// All calls block as the system calls do: a process that serves several peers polls first.
import { loadAddon } from "./loader.js";
import type { NativeShare } from "./native-binding.js";

/** The kernel's SCM_MAX_FD: descriptors one message may carry (254 is refused with EINVAL). */
export const MAX_FDS_PER_MESSAGE = 253;
/** Descriptors per message when a whole pool is sent: Sirius' TRANSFER_CHUNK_SIZE, 128. */
export const FD_BATCH = 128;
/** The largest JSON message (bytes) recvMessage takes: far under the socket's send buffer. */
export const MAX_MESSAGE_BYTES = 1 << 17;

export const POLLIN = 1;
export const POLLHUP = 16;

export type ShareSockets = NativeShare;

/** The addon's socket functions. */
export function shareSockets(): ShareSockets {
  return loadAddon().binding.share;
}

/** One JSON message, with up to MAX_FDS_PER_MESSAGE descriptors riding on it. */
export function sendMessage(fd: number, message: unknown, fds: readonly number[] = []): void {
  const bytes = Buffer.from(JSON.stringify(message));
  if (bytes.length > MAX_MESSAGE_BYTES) throw new Error(`a message of ${bytes.length} bytes: at most ${MAX_MESSAGE_BYTES}`);
  shareSockets().send(fd, bytes, fds);
}

/** The next message and the descriptors it carried (the caller owns them), or null: the peer closed. */
export function recvMessage<T = Record<string, unknown>>(fd: number): { message: T; fds: number[] } | null {
  const got = shareSockets().recv(fd, MAX_MESSAGE_BYTES);
  if (got === null) return null;
  let message: T;
  try {
    message = JSON.parse(got.payload.toString("utf8")) as T;
  } catch (e) {
    for (const fd of got.fds) shareSockets().close(fd); // nothing of a message that is not one is kept
    throw e;
  }
  return { message, fds: got.fds };
}
