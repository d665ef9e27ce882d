#include "torch_errors.h"

#include <cxxabi.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <typeinfo>

namespace lakebed::torch {

namespace {

// c10::SourceLocation (c10/util/Exception.h, unchanged since 1.x): a trivially copyable aggregate
// of 24 bytes, passed by value in memory.
struct SourceLocation {
  const char* function;
  const char* file;
  uint32_t line;
};
using ErrorConstructor = void (*)(void* self, SourceLocation where, std::string message);

// c10::Error is about 130 bytes in PyTorch 2.x (a vtable pointer, four strings, a vector, a
// shared pointer and a pointer); the constructor writes within its own sizeof.
constexpr size_t kErrorStorageBytes = 1024;

constexpr const char* kC10Libraries[] = {"libc10.so", "libc10_cuda.so"};
constexpr const char* kErrorConstructor = "_ZN3c105ErrorC1ENS_14SourceLocationENSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE";
constexpr const char* kOomVtable = "_ZTVN3c1016OutOfMemoryErrorE";
constexpr const char* kOomTypeinfo = "_ZTIN3c1016OutOfMemoryErrorE";

struct Bound {
  ErrorConstructor construct = nullptr;
  void* const* vtable = nullptr;  // the address point: the first virtual function's slot
  std::type_info* type = nullptr;
  void (*destroy)(void*) = nullptr;
};

std::mutex g_bindMu;
Bound g_bound;       // written once under g_bindMu before g_ready
bool g_ready = false;

void* Lookup(const char* symbol) {
  for (const char* lib : kC10Libraries) {
    void* handle = dlopen(lib, RTLD_NOLOAD | RTLD_LAZY);
    if (!handle) continue;
    void* p = dlsym(handle, symbol);
    dlclose(handle);  // only drops the reference NOLOAD took; PyTorch keeps it loaded
    if (p) return p;
  }
  return nullptr;
}

}  // namespace

bool BindTorchErrors(std::string* why) {
  std::lock_guard<std::mutex> lock(g_bindMu);
  if (g_ready) return true;
  Bound b;
  b.construct = reinterpret_cast<ErrorConstructor>(Lookup(kErrorConstructor));
  void* vtable = Lookup(kOomVtable);
  b.type = static_cast<std::type_info*>(Lookup(kOomTypeinfo));
  std::string missing;
  if (!b.construct) missing += " c10::Error(SourceLocation, std::string)";
  if (!vtable) missing += " vtable for c10::OutOfMemoryError";
  if (!b.type) missing += " typeinfo for c10::OutOfMemoryError";
  if (!missing.empty()) {
    *why = "PyTorch's c10 libraries (libc10.so, libc10_cuda.so) are not loaded or do not export:" + missing;
    return false;
  }
  // A vtable starts with the offset to top and the typeinfo pointer; objects point past them. The
  // typeinfo it names may be another library's copy of the same class's (a weak symbol bound
  // elsewhere): the same type for the C++ runtime, which compares typeinfo by name.
  b.vtable = static_cast<void* const*>(vtable) + 2;
  const auto* named = static_cast<const std::type_info*>(static_cast<void* const*>(vtable)[1]);
  if (!named || std::strcmp(named->name(), b.type->name()) != 0) {
    *why = "c10::OutOfMemoryError's vtable does not name its typeinfo (an unexpected C++ ABI)";
    return false;
  }
  // Its first slot is the complete-object destructor (std::exception declares the destructor first).
  b.destroy = reinterpret_cast<void (*)(void*)>(b.vtable[0]);
  g_bound = b;
  g_ready = true;
  return true;
}

void ThrowOutOfMemory(const std::string& message) {
  bool ready = false;
  {
    std::lock_guard<std::mutex> lock(g_bindMu);
    ready = g_ready;
  }
  if (!ready) throw std::runtime_error(message);
  void* object = abi::__cxa_allocate_exception(kErrorStorageBytes);
  std::memset(object, 0, kErrorStorageBytes);
  try {
    g_bound.construct(object, SourceLocation{"lakebed_malloc", __FILE__, static_cast<uint32_t>(__LINE__)}, message);
  } catch (...) {
    abi::__cxa_free_exception(object);
    throw;
  }
  std::memcpy(object, &g_bound.vtable, sizeof(void*));
  // the C++ runtime's own throw (Itanium ABI), as a throw expression compiles to
  abi::__cxa_throw(object, g_bound.type, g_bound.destroy);
}

}  // namespace lakebed::torch
