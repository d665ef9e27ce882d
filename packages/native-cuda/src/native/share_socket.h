// Carrying shareable chunk handles (POSIX file descriptors) between processes: a Unix
// SOCK_SEQPACKET socket (connection-oriented, so its close is seen, and message-preserving, so
// each message's descriptors arrive with that message) with SCM_RIGHTS, the peer's credentials
// from SO_PEERCRED, poll for a registry serving several peers, and a shared-memory region
// (a memfd mapped by both sides) for books that several processes read and write.
//
// Exposed to JavaScript as module functions (the `share` object of the addon); every call is one
// or two system calls and blocks as they do. A failure throws an Error whose `code` is the errno
// name and whose message names the call.
#pragma once

#include <napi.h>

namespace lakebed {

// The kernel's SCM_MAX_FD: one message carries at most this many descriptors (254: EINVAL).
constexpr int kMaxFdsPerMessage = 253;

// Adds `share` (listen, accept, connect, send, recv, poll, peerCred, close, shmCreate, shmMap)
// to the addon's exports.
void AddShareSocket(Napi::Env env, Napi::Object exports);

}  // namespace lakebed
