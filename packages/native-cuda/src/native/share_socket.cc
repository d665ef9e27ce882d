// See share_socket.h. Addresses: a path starting with '@' is in Linux's abstract namespace
// (nothing on disk to clean up, gone with the last socket); any other is a filesystem path.
#include "share_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace lakebed {

namespace {

[[noreturn]] void ThrowErrno(Napi::Env env, const char* call, int err) {
  Napi::Error e = Napi::Error::New(env, std::string("share.") + call + ": " + strerror(err));
  const char* name = nullptr;
  switch (err) {
    case EINVAL: name = "EINVAL"; break;
    case EBADF: name = "EBADF"; break;
    case EMFILE: name = "EMFILE"; break;
    case ENFILE: name = "ENFILE"; break;
    case EACCES: name = "EACCES"; break;
    case EPERM: name = "EPERM"; break;
    case ECONNREFUSED: name = "ECONNREFUSED"; break;
    case ENOENT: name = "ENOENT"; break;
    case EPIPE: name = "EPIPE"; break;
    case ECONNRESET: name = "ECONNRESET"; break;
    case EADDRINUSE: name = "EADDRINUSE"; break;
    case ENOMEM: name = "ENOMEM"; break;
    case EMSGSIZE: name = "EMSGSIZE"; break;
    default: break;
  }
  e.Set("code", name ? std::string(name) : "errno " + std::to_string(err));
  throw e;
}

[[noreturn]] void ThrowInvalid(Napi::Env env, const char* call, const std::string& why) {
  Napi::Error e = Napi::Error::New(env, std::string("share.") + call + ": " + why);
  e.Set("code", "INVALID");
  throw e;
}

int Int(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name) {
  if (!info[i].IsNumber()) ThrowInvalid(info.Env(), call, std::string(name) + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (d < -1 || d > 2147483647 || d != static_cast<double>(static_cast<int64_t>(d)))
    ThrowInvalid(info.Env(), call, std::string(name) + " must be an int");
  return static_cast<int>(d);
}

socklen_t Address(Napi::Env env, const char* call, const std::string& path, sockaddr_un* addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr->sun_path)
    ThrowInvalid(env, call, "the socket path must have 1 to " +
                                std::to_string(sizeof addr->sun_path - 1) + " bytes");
  memcpy(addr->sun_path, path.data(), path.size());
  if (path[0] == '@') addr->sun_path[0] = '\0';  // abstract namespace: no file
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
}

Napi::Object Cred(Napi::Env env, const char* call, int fd) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) ThrowErrno(env, call, errno);
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", static_cast<double>(cred.pid));
  out.Set("uid", static_cast<double>(cred.uid));
  out.Set("gid", static_cast<double>(cred.gid));
  return out;
}

// listen(path) -> fd
Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  sockaddr_un addr;
  const socklen_t len = Address(env, "listen", path, &addr);
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "listen", errno);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 64) != 0) {
    const int err = errno;
    close(fd);
    ThrowErrno(env, "listen", err);
  }
  return Napi::Number::New(env, fd);
}

// accept(listenFd) -> {fd, pid, uid, gid}: the peer's credentials as the kernel recorded them at
// connect (SO_PEERCRED), for the caller to check before it sends anything.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = accept4(Int(info, 0, "accept", "fd"), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "accept", errno);
  Napi::Object out = Cred(env, "accept", fd);
  out.Set("fd", fd);
  return out;
}

// connect(path) -> fd
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  sockaddr_un addr;
  const socklen_t len = Address(env, "connect", path, &addr);
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "connect", errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    const int err = errno;
    close(fd);
    ThrowErrno(env, "connect", err);
  }
  return Napi::Number::New(env, fd);
}

// send(fd, payload: Uint8Array, fds: number[]): one message; more than kMaxFdsPerMessage
// descriptors are refused here (the kernel would say EINVAL).
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = Int(info, 0, "send", "fd");
  if (!info[1].IsTypedArray()) ThrowInvalid(env, "send", "payload must be a Uint8Array");
  Napi::TypedArray payload = info[1].As<Napi::TypedArray>();
  std::vector<int> fds;
  if (info.Length() > 2 && info[2].IsArray()) {
    Napi::Array a = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value v = a.Get(i);
      if (!v.IsNumber()) ThrowInvalid(env, "send", "fds must be numbers");
      fds.push_back(v.As<Napi::Number>().Int32Value());
    }
  }
  if (fds.size() > static_cast<size_t>(kMaxFdsPerMessage))
    ThrowInvalid(env, "send", std::to_string(fds.size()) + " descriptors in one message: at most " +
                                  std::to_string(kMaxFdsPerMessage) + " (SCM_MAX_FD)");
  if (payload.ByteLength() == 0) ThrowInvalid(env, "send", "a message needs at least one byte");
  iovec iov{static_cast<uint8_t*>(payload.ArrayBuffer().Data()) + payload.ByteOffset(),
            payload.ByteLength()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, "send", errno);
  return env.Undefined();
}

// recv(fd, maxBytes) -> {payload: Buffer, fds: number[]}, or null when the peer closed. Received
// descriptors are close-on-exec; the caller owns them (import, then close at once).
Napi::Value Recv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = Int(info, 0, "recv", "fd");
  const int maxBytes = Int(info, 1, "recv", "maxBytes");
  if (maxBytes <= 0) ThrowInvalid(env, "recv", "maxBytes must be positive");
  std::vector<uint8_t> buf(static_cast<size_t>(maxBytes));
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage));
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, "recv", errno);
  Napi::Array fds = Napi::Array::New(env);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* p = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (size_t i = 0; i < count; i++) fds.Set(fds.Length(), p[i]);
  }
  if (n == 0 && fds.Length() == 0) return env.Null();  // orderly close
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    for (uint32_t i = 0; i < fds.Length(); i++) close(fds.Get(i).As<Napi::Number>().Int32Value());
    ThrowInvalid(env, "recv", "a message was truncated (payload over maxBytes, or descriptors lost)");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("payload", Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(n)));
  out.Set("fds", fds);
  return out;
}

// poll(fds: number[], timeoutMs) -> revents per fd (POLLIN 1, POLLERR 8, POLLHUP 16)
Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) ThrowInvalid(env, "poll", "fds must be an array");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<pollfd> p(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) p[i] = {a.Get(i).As<Napi::Number>().Int32Value(), POLLIN, 0};
  const int timeout = Int(info, 1, "poll", "timeoutMs");
  int n;
  do n = poll(p.data(), p.size(), timeout);
  while (n < 0 && errno == EINTR);
  if (n < 0) ThrowErrno(env, "poll", errno);
  Napi::Array out = Napi::Array::New(env, p.size());
  for (uint32_t i = 0; i < p.size(); i++) out.Set(i, static_cast<double>(p[i].revents));
  return out;
}

Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  return Cred(info.Env(), "peerCred", Int(info, 0, "peerCred", "fd"));
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  if (close(Int(info, 0, "close", "fd")) != 0) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

// shmCreate(bytes) -> fd: a zeroed memfd for books shared between processes (sent like a chunk).
Napi::Value ShmCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int bytes = Int(info, 0, "shmCreate", "bytes");
  const int fd = memfd_create("lakebed:share-books", MFD_CLOEXEC);
  if (fd < 0) ThrowErrno(env, "shmCreate", errno);
  if (ftruncate(fd, bytes) != 0) {
    const int err = errno;
    close(fd);
    ThrowErrno(env, "shmCreate", err);
  }
  return Napi::Number::New(env, fd);
}

// shmMap(fd, bytes) -> ArrayBuffer over a MAP_SHARED mapping of the region (unmapped when the
// buffer is collected). Atomics on an Int32Array over it are real atomic instructions on the
// shared pages, so processes can keep a lock and counters in it.
Napi::Value ShmMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = Int(info, 0, "shmMap", "fd");
  const int bytes = Int(info, 1, "shmMap", "bytes");
  void* p = mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) ThrowErrno(env, "shmMap", errno);
  return Napi::ArrayBuffer::New(env, p, static_cast<size_t>(bytes),
                                [](Napi::Env, void* data, size_t* len) {
                                  munmap(data, *len);
                                  delete len;
                                },
                                new size_t(static_cast<size_t>(bytes)));
}

}  // namespace

void AddShareSocket(Napi::Env env, Napi::Object exports) {
  Napi::Object share = Napi::Object::New(env);
  share.Set("listen", Napi::Function::New<Listen>(env, "listen"));
  share.Set("accept", Napi::Function::New<Accept>(env, "accept"));
  share.Set("connect", Napi::Function::New<Connect>(env, "connect"));
  share.Set("send", Napi::Function::New<Send>(env, "send"));
  share.Set("recv", Napi::Function::New<Recv>(env, "recv"));
  share.Set("poll", Napi::Function::New<Poll>(env, "poll"));
  share.Set("peerCred", Napi::Function::New<PeerCred>(env, "peerCred"));
  share.Set("close", Napi::Function::New<Close>(env, "close"));
  share.Set("shmCreate", Napi::Function::New<ShmCreate>(env, "shmCreate"));
  share.Set("shmMap", Napi::Function::New<ShmMap>(env, "shmMap"));
  share.Set("maxFdsPerMessage", kMaxFdsPerMessage);
  exports.Set("share", share);
}

}  // namespace lakebed
