// The N-API surface: one Driver class whose methods are the device calls, plus probe() for
// doctor(). This file only converts values and errors; the work is in DriverCore.
//
// Conventions at this boundary:
//   - numbers in and out are doubles; every address, size and count is an integer below 2^53.
//     The public Driver validates in JS first (clear messages for library users); a live
//     replay's Wasm imports call these methods directly (Driver.direct), so these checks and
//     DriverCore's are the ones that refuse a bad argument there, with the same DeviceError;
//   - memCreate/addressReserve/malloc return kOom (-1) when the device is out of memory, and so
//     do tryMap/trySetAccess when the driver refused for want of memory or by an injected fault:
//     policies treat those as ordinary answers (roll back, free the cache, retry), not exceptions;
//   - the success path builds no strings and no objects (memGetInfo and the reports aside);
//   - every other failure throws the DeviceError class that the JS side defined and registered
//     with setErrorClass, carrying {call, driver, code, driverError};
//   - nothing a driver made outlives it: an env cleanup hook tears each open driver down when its
//     environment ends (normal exit, the end of a worker thread); process.exit() skips those
//     hooks on the main thread, so the JS loader also calls teardownAll() from process 'exit';
//     a driver collected as garbage is torn down by its finalizer. After SIGKILL the kernel
//     (memfds, mappings) or the CUDA driver (the process's context) frees everything.
#include <napi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>

#include "call_kinds.h"
#include "cuda_backend.h"
#include "cuda_loader.h"
#include "driver_core.h"
#include "host_backend.h"
#include "share_socket.h"

namespace lakebed {
namespace {

constexpr double kOom = -1;
constexpr double kMaxExact = 9007199254740992.0;  // 2^53

class DriverWrap;

// Per-environment state: each worker thread loads its own copy of the module.
struct AddonData {
  Napi::FunctionReference errorClass;
  std::set<DriverWrap*> open;  // every driver of this env not yet destroyed
};

std::atomic<uint64_t> driversOpened{0};  // process-wide, so memfd labels differ across workers

const char* CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOutOfMemory: return "OUT_OF_MEMORY";
    case Status::Code::kInvalid: return "INVALID";
    case Status::Code::kDriver: return "DRIVER";
    case Status::Code::kInjected: return "INJECTED";
    case Status::Code::kClosed: return "CLOSED";
    case Status::Code::kOk: break;
  }
  return "OK";
}

// Throws the JS-defined error class: new DeviceError(message, {call, driver, code, driverError}).
[[noreturn]] void ThrowDeviceError(Napi::Env env, const std::string& driver, const char* call,
                                   const char* code, const std::string& driverError,
                                   const std::string& message) {
  const std::string text = driver + "." + call + ": " + message;
  Napi::Object details = Napi::Object::New(env);
  details.Set("call", call);
  details.Set("driver", driver);
  details.Set("code", code);
  details.Set("driverError", driverError);
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->errorClass.IsEmpty())
    throw Napi::Error(env, data->errorClass.New({Napi::String::New(env, text), details}));
  Napi::Error err = Napi::Error::New(env, text);  // only before the JS side registered its class
  err.Set("call", call);
  err.Set("driver", driver);
  err.Set("code", code);
  err.Set("driverError", driverError);
  throw err;
}

// What a refused argument was, for the error message.
std::string Shown(Napi::Env env, napi_value v, bool isNumber, double d) {
  if (isNumber) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", d);
    if (std::strtod(buf, nullptr) != d) snprintf(buf, sizeof buf, "%.17g", d);
    return buf;
  }
  napi_valuetype type = napi_undefined;
  napi_typeof(env, v, &type);
  switch (type) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_string: return "a string";
    case napi_bigint: return "a bigint";
    default: return "an object";
  }
}

// An integer in [0, 2^53) at argument i: one napi_get_value_double, which refuses a non-number.
uint64_t U64(const Napi::CallbackInfo& info, size_t i, const std::string& driver, const char* call,
             const char* name) {
  const napi_value v = info[i];
  double d = 0;
  const bool isNumber = napi_get_value_double(info.Env(), v, &d) == napi_ok;
  if (isNumber && d >= 0 && d < kMaxExact && d == static_cast<double>(static_cast<uint64_t>(d)))
    return static_cast<uint64_t>(d);
  ThrowDeviceError(info.Env(), driver, call, "INVALID", "",
                   std::string(name) + " must be an integer in [0, 2^53), got " +
                       Shown(info.Env(), v, isNumber, d));
}

// undefined, without asking the engine for it (an empty napi_value returns undefined).
Napi::Value Nothing() { return Napi::Value(); }

Napi::Number Num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

// One JS object per table row, in the table's (address or id) order; fill sets its fields.
template <class Table, class Fill>
Napi::Array ListOf(Napi::Env env, const Table& table, Fill fill) {
  Napi::Array out = Napi::Array::New(env, table.size());
  uint32_t i = 0;
  for (const auto& [key, record] : table) {
    Napi::Object o = Napi::Object::New(env);
    fill(o, key, record);
    out.Set(i++, o);
  }
  return out;
}

class DriverWrap : public Napi::ObjectWrap<DriverWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "NativeDriver",
        {
            InstanceMethod<&DriverWrap::MemCreate>("memCreate"),
            InstanceMethod<&DriverWrap::MemRelease>("memRelease"),
            InstanceMethod<&DriverWrap::AddressReserve>("addressReserve"),
            InstanceMethod<&DriverWrap::AddressFree>("addressFree"),
            InstanceMethod<&DriverWrap::Map>("map"),
            InstanceMethod<&DriverWrap::TryMap>("tryMap"),
            InstanceMethod<&DriverWrap::SetAccess>("setAccess"),
            InstanceMethod<&DriverWrap::TrySetAccess>("trySetAccess"),
            InstanceMethod<&DriverWrap::Unmap>("unmap"),
            InstanceMethod<&DriverWrap::Malloc>("malloc"),
            InstanceMethod<&DriverWrap::Free>("free"),
            InstanceMethod<&DriverWrap::CopyToHost>("copyToHost"),
            InstanceMethod<&DriverWrap::CopyFromHost>("copyFromHost"),
            InstanceMethod<&DriverWrap::Memset>("memset"),
            InstanceMethod<&DriverWrap::MemGetInfo>("memGetInfo"),
            InstanceMethod<&DriverWrap::FillPattern>("fillPattern"),
            InstanceMethod<&DriverWrap::CheckPattern>("checkPattern"),
            InstanceMethod<&DriverWrap::HostReserve>("hostReserve"),
            InstanceMethod<&DriverWrap::CopyOut>("copyOut"),
            InstanceMethod<&DriverWrap::CopyIn>("copyIn"),
            InstanceMethod<&DriverWrap::HostRelease>("hostRelease"),
            InstanceMethod<&DriverWrap::MemCreateShareable>("memCreateShareable"),
            InstanceMethod<&DriverWrap::ExportHandle>("exportHandle"),
            InstanceMethod<&DriverWrap::ImportHandle>("importHandle"),
            InstanceMethod<&DriverWrap::SetAccessReadOnly>("setAccessReadOnly"),
            InstanceMethod<&DriverWrap::WriteThroughReadOnly>("writeThroughReadOnly"),
            InstanceMethod<&DriverWrap::Info>("info"),
            InstanceMethod<&DriverWrap::Counters>("counters"),
            InstanceMethod<&DriverWrap::LeakReport>("leakReport"),
            InstanceMethod<&DriverWrap::IsValid>("isValid"),
            InstanceMethod<&DriverWrap::SetFailEvery>("setFailEvery"),
            InstanceMethod<&DriverWrap::Teardown>("teardown"),
            InstanceMethod<&DriverWrap::SetTiming>("setTiming"),
            InstanceMethod<&DriverWrap::TakeTimings>("takeTimings"),
            InstanceMethod<&DriverWrap::TimingClockNs>("timingClockNs"),
            InstanceMethod<&DriverWrap::Nop>("nop"),
        });
  }

  // new NativeDriver(kind: 'host' | 'cuda', capacityBytes: number, device: number)
  explicit DriverWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DriverWrap>(info) {
    Napi::Env env = info.Env();
    kind_ = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    if (kind_ != "host" && kind_ != "cuda")
      ThrowDeviceError(env, "native", "open", "INVALID", "", "driver kind must be 'host' or 'cuda'");
    const uint64_t capacityBytes = U64(info, 1, kind_, "open", "capacity");
    const uint64_t device = U64(info, 2, kind_, "open", "device");
    const uint64_t serial = ++driversOpened;
    std::unique_ptr<Backend> backend;
    if (kind_ == "host") {
      backend = MakeHostBackend("lakebed:" + std::to_string(getpid()) + ":d" +
                                std::to_string(serial));
    } else {
      const Status s = OpenCudaBackend(static_cast<int>(device), &backend);
      if (!s.ok())
        ThrowDeviceError(env, kind_, "open", s.driverError == "UNAVAILABLE" ? "UNAVAILABLE"
                                                                            : CodeName(s.code),
                         s.driverError, s.message);
    }
    core_ = std::make_unique<DriverCore>(std::move(backend), capacityBytes);
    env_ = env;
    data_ = env.GetInstanceData<AddonData>();
    data_->open.insert(this);
    napi_add_env_cleanup_hook(env_, &DriverWrap::OnEnvExit, this);
    hooked_ = true;
  }

  ~DriverWrap() override {
    // Garbage-collected while still open: release everything now rather than at exit.
    if (hooked_) napi_remove_env_cleanup_hook(env_, &DriverWrap::OnEnvExit, this);
    hooked_ = false;
    data_->open.erase(this);
    Cleanup("garbage collection");
  }

  // Exit cleanup (the env hook, or teardownAll from process 'exit'): a no-op once closed.
  void ExitCleanup() { Cleanup("exit cleanup"); }

 private:
  // Tears down a driver its owner did not tear down. LAKEBED_NATIVE_DEBUG=1 prints what was
  // released, one line on stderr (the tests and the GPU check read it).
  void Cleanup(const char* why) {
    if (core_->closed()) return;
    const TeardownReport r = core_->Teardown();
    const char* debug = std::getenv("LAKEBED_NATIVE_DEBUG");
    if (debug && *debug && *debug != '0')
      fprintf(stderr,
              "lakebed-native: %s of %s driver: unmapped %llu, freed %llu reservations, "
              "released %llu handles, freed %llu mallocs%s, %zu errors\n",
              why, kind_.c_str(), static_cast<unsigned long long>(r.unmapped),
              static_cast<unsigned long long>(r.addressesFreed),
              static_cast<unsigned long long>(r.handlesReleased),
              static_cast<unsigned long long>(r.mallocsFreed),
              r.hostArenaBytes ? (", released a host arena of " + std::to_string(r.hostArenaBytes) + " bytes").c_str() : "",
              r.errors.size());
  }

  static void OnEnvExit(void* arg) {
    auto* self = static_cast<DriverWrap*>(arg);
    self->hooked_ = false;
    self->ExitCleanup();
  }

  void Check(Napi::Env env, const char* call, const Status& s) {
    if (!s.ok()) ThrowDeviceError(env, kind_, call, CodeName(s.code), s.driverError, s.message);
  }

  // For the calls whose out-of-memory answer is a value: kOom instead of an exception.
  bool IsOom(const Status& s) { return s.code == Status::Code::kOutOfMemory; }

  // tryMap/trySetAccess: 0 when done; kOom when the driver refused for want of memory or by an
  // injected fault (the policy rolls its operation back); any other failure throws.
  Napi::Value Refusable(Napi::Env env, const char* call, const Status& s) {
    if (IsOom(s) || s.code == Status::Code::kInjected) return Napi::Number::New(env, kOom);
    Check(env, call, s);
    return Napi::Number::New(env, 0);
  }

  uint64_t Arg(const Napi::CallbackInfo& info, size_t i, const char* call, const char* name) {
    return U64(info, i, kind_, call, name);
  }

  // (buffer: TypedArray, bytes) -> pointer into the buffer, checked to hold `bytes`.
  uint8_t* Buffer(const Napi::CallbackInfo& info, size_t i, uint64_t bytes, const char* call) {
    if (!info[i].IsTypedArray())
      ThrowDeviceError(info.Env(), kind_, call, "INVALID", "", "buffer must be a TypedArray");
    Napi::TypedArray view = info[i].As<Napi::TypedArray>();
    if (bytes > view.ByteLength())
      ThrowDeviceError(info.Env(), kind_, call, "INVALID", "",
                       "buffer holds " + std::to_string(view.ByteLength()) + " bytes, fewer than " +
                           std::to_string(bytes));
    return static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
  }

  Napi::Value MemCreate(const Napi::CallbackInfo& info) {
    uint32_t handle = 0;
    const Status s = core_->MemCreate(Arg(info, 0, "memCreate", "bytes"), &handle);
    if (IsOom(s)) return Napi::Number::New(info.Env(), kOom);
    Check(info.Env(), "memCreate", s);
    return Napi::Number::New(info.Env(), handle);
  }

  Napi::Value MemRelease(const Napi::CallbackInfo& info) {
    const uint64_t handle = Arg(info, 0, "memRelease", "handle");
    Check(info.Env(), "memRelease",
          handle > UINT32_MAX ? Status::Invalid("handle " + std::to_string(handle) + " is not live")
                              : core_->MemRelease(static_cast<uint32_t>(handle)));
    return Nothing();
  }

  Napi::Value AddressReserve(const Napi::CallbackInfo& info) {
    uint64_t va = 0;
    const Status s = core_->AddressReserve(Arg(info, 0, "addressReserve", "bytes"),
                                           Arg(info, 1, "addressReserve", "alignment"), &va);
    if (IsOom(s)) return Napi::Number::New(info.Env(), kOom);
    Check(info.Env(), "addressReserve", s);
    return Num(info.Env(), va);
  }

  Napi::Value AddressFree(const Napi::CallbackInfo& info) {
    Check(info.Env(), "addressFree",
          core_->AddressFree(Arg(info, 0, "addressFree", "va"), Arg(info, 1, "addressFree", "bytes")));
    return Nothing();
  }

  // map(va, bytes, handle, offset) and tryMap: the same call, answered two ways.
  Status DoMap(const Napi::CallbackInfo& info) {
    const uint64_t va = Arg(info, 0, "map", "va");
    const uint64_t bytes = Arg(info, 1, "map", "bytes");
    const uint64_t handle = Arg(info, 2, "map", "handle");
    const uint64_t offset = Arg(info, 3, "map", "offset");
    if (handle > UINT32_MAX)
      return Status::Invalid("handle " + std::to_string(handle) + " is not live");
    return core_->Map(va, bytes, static_cast<uint32_t>(handle), offset);
  }

  Napi::Value Map(const Napi::CallbackInfo& info) {
    Check(info.Env(), "map", DoMap(info));
    return Nothing();
  }

  Napi::Value TryMap(const Napi::CallbackInfo& info) {
    return Refusable(info.Env(), "map", DoMap(info));
  }

  Status DoSetAccess(const Napi::CallbackInfo& info) {
    return core_->SetAccess(Arg(info, 0, "setAccess", "va"), Arg(info, 1, "setAccess", "bytes"));
  }

  Napi::Value SetAccess(const Napi::CallbackInfo& info) {
    Check(info.Env(), "setAccess", DoSetAccess(info));
    return Nothing();
  }

  Napi::Value TrySetAccess(const Napi::CallbackInfo& info) {
    return Refusable(info.Env(), "setAccess", DoSetAccess(info));
  }

  Napi::Value Unmap(const Napi::CallbackInfo& info) {
    Check(info.Env(), "unmap", core_->Unmap(Arg(info, 0, "unmap", "va"), Arg(info, 1, "unmap", "bytes")));
    return Nothing();
  }

  Napi::Value Malloc(const Napi::CallbackInfo& info) {
    uint64_t va = 0;
    const Status s = core_->Malloc(Arg(info, 0, "malloc", "bytes"), &va);
    if (IsOom(s)) return Napi::Number::New(info.Env(), kOom);
    Check(info.Env(), "malloc", s);
    return Num(info.Env(), va);
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    Check(info.Env(), "free", core_->Free(Arg(info, 0, "free", "va")));
    return Nothing();
  }

  // copyToHost(va, buffer, bytes): device -> buffer
  Napi::Value CopyToHost(const Napi::CallbackInfo& info) {
    const uint64_t va = Arg(info, 0, "copyToHost", "va");
    const uint64_t bytes = Arg(info, 2, "copyToHost", "bytes");
    uint8_t* dst = Buffer(info, 1, bytes, "copyToHost");
    Check(info.Env(), "copyToHost", core_->CopyToHost(va, dst, bytes));
    return Nothing();
  }

  // copyFromHost(va, buffer, bytes): buffer -> device
  Napi::Value CopyFromHost(const Napi::CallbackInfo& info) {
    const uint64_t va = Arg(info, 0, "copyFromHost", "va");
    const uint64_t bytes = Arg(info, 2, "copyFromHost", "bytes");
    const uint8_t* src = Buffer(info, 1, bytes, "copyFromHost");
    Check(info.Env(), "copyFromHost", core_->CopyFromHost(va, src, bytes));
    return Nothing();
  }

  Napi::Value Memset(const Napi::CallbackInfo& info) {
    const uint64_t va = Arg(info, 0, "memset", "va");
    const uint64_t value = Arg(info, 1, "memset", "value");
    const uint64_t bytes = Arg(info, 2, "memset", "bytes");
    Check(info.Env(), "memset",
          value > 255 ? Status::Invalid("value must be a byte (0..255)")
                      : core_->Memset(va, static_cast<uint8_t>(value), bytes));
    return Nothing();
  }

  Napi::Value MemGetInfo(const Napi::CallbackInfo& info) {
    uint64_t freeBytes = 0, totalBytes = 0;
    Check(info.Env(), "memGetInfo", core_->MemGetInfo(&freeBytes, &totalBytes));
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("free", Num(info.Env(), freeBytes));
    out.Set("total", Num(info.Env(), totalBytes));
    return out;
  }

  Napi::Value FillPattern(const Napi::CallbackInfo& info) {
    Check(info.Env(), "fillPattern",
          core_->FillPattern(Arg(info, 0, "fillPattern", "va"), Arg(info, 1, "fillPattern", "bytes"),
                             Arg(info, 2, "fillPattern", "seed")));
    return Nothing();
  }

  Napi::Value CheckPattern(const Napi::CallbackInfo& info) {
    uint64_t bad = 0;
    Check(info.Env(), "checkPattern",
          core_->CheckPattern(Arg(info, 0, "checkPattern", "va"),
                              Arg(info, 1, "checkPattern", "bytes"),
                              Arg(info, 2, "checkPattern", "seed"), &bad));
    return Num(info.Env(), bad);
  }

  // hostReserve(bytes): 0 when the arena is pinned; kOom when the host refused for want of
  // memory or by an injected fault (the policy goes on without a host tier); else throws.
  Napi::Value HostReserve(const Napi::CallbackInfo& info) {
    return Refusable(info.Env(), "hostReserve", core_->HostReserve(Arg(info, 0, "hostReserve", "bytes")));
  }

  // copyOut(va, hostOffset, bytes): device -> arena
  Napi::Value CopyOut(const Napi::CallbackInfo& info) {
    Check(info.Env(), "copyOut",
          core_->CopyOut(Arg(info, 0, "copyOut", "va"), Arg(info, 1, "copyOut", "hostOffset"),
                         Arg(info, 2, "copyOut", "bytes")));
    return Nothing();
  }

  // copyIn(hostOffset, va, bytes): arena -> device
  Napi::Value CopyIn(const Napi::CallbackInfo& info) {
    Check(info.Env(), "copyIn",
          core_->CopyIn(Arg(info, 0, "copyIn", "hostOffset"), Arg(info, 1, "copyIn", "va"),
                        Arg(info, 2, "copyIn", "bytes")));
    return Nothing();
  }

  Napi::Value HostRelease(const Napi::CallbackInfo& info) {
    Check(info.Env(), "hostRelease", core_->HostRelease());
    return Nothing();
  }

  // ---- sharing between processes (driver_core.h) ----

  Napi::Value MemCreateShareable(const Napi::CallbackInfo& info) {
    uint32_t handle = 0;
    const Status s = core_->MemCreateShareable(Arg(info, 0, "memCreateShareable", "bytes"), &handle);
    if (IsOom(s)) return Napi::Number::New(info.Env(), kOom);
    Check(info.Env(), "memCreateShareable", s);
    return Napi::Number::New(info.Env(), handle);
  }

  // exportHandle(handle) -> {fd, driverNs}: fd is the caller's to send and close.
  Napi::Value ExportHandle(const Napi::CallbackInfo& info) {
    const uint64_t handle = Arg(info, 0, "exportHandle", "handle");
    int fd = -1;
    int64_t ns = 0;
    Check(info.Env(), "exportHandle",
          handle > UINT32_MAX ? Status::Invalid("handle " + std::to_string(handle) + " is not live")
                              : core_->ExportHandle(static_cast<uint32_t>(handle), &fd, &ns));
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("fd", fd);
    out.Set("driverNs", static_cast<double>(ns));
    return out;
  }

  // importHandle(fd, bytes) -> {handle, driverNs}; the caller closes fd right after.
  Napi::Value ImportHandle(const Napi::CallbackInfo& info) {
    const uint64_t fd = Arg(info, 0, "importHandle", "fd");
    const uint64_t bytes = Arg(info, 1, "importHandle", "bytes");
    uint32_t handle = 0;
    int64_t ns = 0;
    Check(info.Env(), "importHandle",
          fd > INT32_MAX ? Status::Invalid("fd " + std::to_string(fd) + " is no descriptor")
                         : core_->ImportHandle(static_cast<int>(fd), bytes, &handle, &ns));
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("handle", handle);
    out.Set("driverNs", static_cast<double>(ns));
    return out;
  }

  Napi::Value SetAccessReadOnly(const Napi::CallbackInfo& info) {
    Check(info.Env(), "setAccessReadOnly",
          core_->SetAccessReadOnly(Arg(info, 0, "setAccessReadOnly", "va"),
                                   Arg(info, 1, "setAccessReadOnly", "bytes")));
    return Nothing();
  }

  Napi::Value WriteThroughReadOnly(const Napi::CallbackInfo& info) {
    Check(info.Env(), "writeThroughReadOnly",
          core_->WriteThroughReadOnly(Arg(info, 0, "writeThroughReadOnly", "va"),
                                      Arg(info, 1, "writeThroughReadOnly", "bytes")));
    return Nothing();
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("kind", kind_);
    out.Set("description", core_->description());
    out.Set("granularity", Num(info.Env(), core_->granularityBytes()));
    out.Set("capacity", Num(info.Env(), core_->capacityBytes()));
    out.Set("closed", core_->closed());
    return out;
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const LiveTotals& t = core_->tables().totals;
    const CallCounters& c = core_->counters();
    Napi::Object out = Napi::Object::New(env);
    out.Set("liveHandles", Num(env, t.liveHandles));
    out.Set("liveReservations", Num(env, t.liveReservations));
    out.Set("liveMappings", Num(env, t.liveMappings));
    out.Set("liveMallocs", Num(env, t.liveMallocs));
    out.Set("handleBytes", Num(env, t.handleBytes));
    out.Set("physicalBytes", Num(env, t.physicalBytes));
    out.Set("reservedBytes", Num(env, t.reservedBytes));
    out.Set("mappedBytes", Num(env, t.mappedBytes));
    out.Set("mallocBytes", Num(env, t.mallocBytes));
    out.Set("hostArenaBytes", Num(env, core_->hostArenaBytes()));
    Napi::Object calls = Napi::Object::New(env);
    Napi::Object failures = Napi::Object::New(env);
    Napi::Object ooms = Napi::Object::New(env);
    Napi::Object injected = Napi::Object::New(env);
    for (size_t i = 0; i < kCallKindCount; i++) {
      const CallKind kind = static_cast<CallKind>(i);
      calls.Set(CallName(kind), Num(env, c.calls[i]));
      failures.Set(CallName(kind), Num(env, c.failures[i]));
      ooms.Set(CallName(kind), Num(env, c.ooms[i]));
      injected.Set(CallName(kind), Num(env, core_->faults().Injected(kind)));
    }
    out.Set("calls", calls);
    out.Set("failures", failures);
    out.Set("ooms", ooms);
    out.Set("injected", injected);
    return out;
  }

  Napi::Value LeakReport(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const LiveTables& t = core_->tables();
    Napi::Array handles = ListOf(env, t.handles, [&](Napi::Object o, uint32_t id, const HandleRecord& h) {
      o.Set("handle", Num(env, id));
      o.Set("bytes", Num(env, h.bytes));
      o.Set("mappings", Num(env, h.mappings));
      o.Set("released", h.released);
    });
    Napi::Array reservations =
        ListOf(env, t.reservations, [&](Napi::Object o, uint64_t va, const ReservationRecord& r) {
          o.Set("va", Num(env, va));
          o.Set("bytes", Num(env, r.bytes));
          o.Set("mappings", Num(env, r.mappings));
        });
    Napi::Array mappings = ListOf(env, t.mappings, [&](Napi::Object o, uint64_t va, const MappingRecord& m) {
      o.Set("va", Num(env, va));
      o.Set("bytes", Num(env, m.bytes));
      o.Set("handle", Num(env, m.handle));
      o.Set("offset", Num(env, m.offsetBytes));
      o.Set("access", m.access);
    });
    Napi::Array mallocs = ListOf(env, t.mallocs, [&](Napi::Object o, uint64_t va, const MallocRecord& m) {
      o.Set("va", Num(env, va));
      o.Set("bytes", Num(env, m.bytes));
    });
    Napi::Object out = Napi::Object::New(env);
    out.Set("clean", t.empty() && core_->hostArenaBytes() == 0);
    out.Set("handles", handles);
    out.Set("reservations", reservations);
    out.Set("mappings", mappings);
    out.Set("mallocs", mallocs);
    out.Set("hostArenaBytes", Num(env, core_->hostArenaBytes()));
    return out;
  }

  // null when every table invariant holds, else the first broken one (handle_table.h).
  Napi::Value IsValid(const Napi::CallbackInfo& info) {
    std::string why;
    if (core_->tables().IsValid(&why)) return info.Env().Null();
    return Napi::String::New(info.Env(), why);
  }

  // setFailEvery(call: string, n: number); n = 0 turns injection off for that call.
  Napi::Value SetFailEvery(const Napi::CallbackInfo& info) {
    const std::string name = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    CallKind kind;
    if (!CallKindFromName(name.c_str(), &kind))
      ThrowDeviceError(info.Env(), kind_, "setFailEvery", "INVALID", "",
                       "'" + name + "' is no call kind");
    core_->faults().SetEvery(kind, Arg(info, 1, "setFailEvery", "n"));
    return Nothing();
  }

  // setTiming(on: boolean): per-call timing inside DriverCore (call_timing.h), off by default.
  Napi::Value SetTiming(const Napi::CallbackInfo& info) {
    core_->SetTiming(info[0].ToBoolean().Value());
    return Nothing();
  }

  // takeTimings(): the calls timed since the last take, as one Float64Array of (kind index in
  // callKinds, core ns, driver ns) triples, oldest first; forgets them. One crossing for them all.
  Napi::Value TakeTimings(const Napi::CallbackInfo& info) {
    const std::vector<CallTime> times = core_->TakeTimes();
    Napi::Float64Array out = Napi::Float64Array::New(info.Env(), times.size() * 3);
    double* p = out.Data();
    for (const CallTime& t : times) {
      *p++ = static_cast<double>(static_cast<int>(t.kind));
      *p++ = static_cast<double>(t.coreNs);
      *p++ = static_cast<double>(t.driverNs);
    }
    return out;
  }

  // timingClockNs(): what one clock read costs here (measured when timing went on).
  Napi::Value TimingClockNs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), core_->clockReadNs());
  }

  // nop(a, b, c, d): reads its arguments as a device call does, and does nothing else: the
  // benchmark times it for the floor of one JS -> native call.
  Napi::Value Nop(const Napi::CallbackInfo& info) {
    double sink = 0;
    for (size_t i = 0; i < info.Length(); i++) {
      double d = 0;
      napi_get_value_double(info.Env(), info[i], &d);
      sink += d;
    }
    return sink < 0 ? info.Env().Null() : Nothing();
  }

  Napi::Value Teardown(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const TeardownReport r = core_->Teardown();
    if (hooked_) napi_remove_env_cleanup_hook(env_, &DriverWrap::OnEnvExit, this);
    hooked_ = false;
    Napi::Object out = Napi::Object::New(env);
    out.Set("unmapped", Num(env, r.unmapped));
    out.Set("addressesFreed", Num(env, r.addressesFreed));
    out.Set("handlesReleased", Num(env, r.handlesReleased));
    out.Set("mallocsFreed", Num(env, r.mallocsFreed));
    out.Set("hostArenaBytes", Num(env, r.hostArenaBytes));
    Napi::Array errors = Napi::Array::New(env);
    for (const std::string& e : r.errors) errors.Set(errors.Length(), e);
    out.Set("errors", errors);
    return out;
  }

  std::unique_ptr<DriverCore> core_;
  std::string kind_;
  napi_env env_ = nullptr;
  AddonData* data_ = nullptr;  // outlives every driver of its env (freed after all finalizers)
  bool hooked_ = false;
};

// teardownAll(): exit cleanup of every driver of this env (process 'exit' calls it).
Napi::Value TeardownAll(const Napi::CallbackInfo& info) {
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  const std::set<DriverWrap*> open = data->open;  // a copy: teardown never erases, but be safe
  for (DriverWrap* driver : open) driver->ExitCleanup();
  return info.Env().Undefined();
}

// probe(kind) -> {available, reason}: whether a driver of that kind can open here, and why not.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string kind = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  Napi::Object out = Napi::Object::New(env);
  if (kind == "host") {
    const int fd = memfd_create("lakebed:probe", MFD_CLOEXEC);
    out.Set("available", fd >= 0);
    out.Set("reason", fd >= 0 ? "" : "memfd_create failed (Linux 3.17+ is needed)");
    if (fd >= 0) close(fd);
  } else if (kind == "cuda") {
    std::string why;
    const CudaApi* api = LoadCuda(&why);
    out.Set("available", api != nullptr);
    out.Set("reason", why);
    if (api) {
      out.Set("devices", api->deviceCount);
      out.Set("driverVersion", api->driverVersion);
    }
  } else {
    ThrowDeviceError(env, "native", "probe", "INVALID", "", "driver kind must be 'host' or 'cuda'");
  }
  return out;
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) {
    Napi::TypeError::New(info.Env(), "setErrorClass takes a constructor").ThrowAsJavaScriptException();
    return Nothing();
  }
  info.Env().GetInstanceData<AddonData>()->errorClass =
      Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  Napi::Array kinds = Napi::Array::New(env, kCallKindCount);
  for (size_t i = 0; i < kCallKindCount; i++) kinds.Set(i, CallName(static_cast<CallKind>(i)));
  exports.Set("Driver", DriverWrap::Define(env));
  exports.Set("probe", Napi::Function::New<Probe>(env, "probe"));
  exports.Set("setErrorClass", Napi::Function::New<SetErrorClass>(env, "setErrorClass"));
  exports.Set("teardownAll", Napi::Function::New<TeardownAll>(env, "teardownAll"));
  exports.Set("callKinds", kinds);
  exports.Set("OOM", Napi::Number::New(env, kOom));
  AddShareSocket(env, exports);
  return exports;
}

}  // namespace
}  // namespace lakebed

// NODE_API_MODULE pastes the init function's name into an identifier: it must be unqualified.
static Napi::Object InitLakebedNative(Napi::Env env, Napi::Object exports) {
  return lakebed::Init(env, exports);
}
NODE_API_MODULE(lakebed_native, InitLakebedNative)
